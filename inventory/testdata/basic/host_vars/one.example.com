ansible_become: no
host_file_var: 1
