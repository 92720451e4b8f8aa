// Package inventory reads Ansible-compatible inventories (INI and YAML, with
// group_vars/ and host_vars/ next to them), merges variables with Ansible's
// precedence, evaluates Ansible host patterns and renders the outputs of
// `ansible-inventory --list|--graph|--host`. Typed accessors read the
// connection variables (Host.Connection) and orch's agent variables
// (Host.Agent): read and validated once here, they travel typed.
//
// An *Inventory is immutable once loaded and safe for concurrent use.
//
// The behaviour follows ansible-core's inventory code (plugins/inventory/ini.py
// and yaml.py, inventory/data.py, group.py, manager.py, cli/inventory.py):
// INI values are Python literals, ansible_group_priority is taken from
// inventory files only, "all" lists hosts by walking the group tree, an
// unmatched pattern term is a warning, and --list keeps inventory order.
// Where this package differs, it is stricter or does less:
//
//   - YAML inventories: keys Ansible skips with a warning (unknown group
//     keys, non-mapping bodies, duplicate keys) are errors with a position.
//   - Ranges that expand to nothing (node[5:1]) or to more than 100,000
//     names are errors.
//   - No implicit localhost, no inventory scripts or plugins, no Vault.
//   - Duplicates from overlapping pattern matches (web* matching a group
//     and its hosts) are removed before a subscript applies.
//   - Integers beyond 64 bits and complex numbers in INI values stay strings.
//
// Errors are *Error values carrying file:line:col and the host, group,
// variable or pattern concerned; they wrap the sentinel errors below.
package inventory
