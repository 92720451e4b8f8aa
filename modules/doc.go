// Package modules holds the node drivers: what runs on a node, inside the agent, to make a
// member's share of the cluster real. Its sub-packages own:
//
//   - lxc: LXC system containers (create, start, stop, exec, files, info);
//   - storage: a member's part of a storage pool and its volumes (dir, btrfs, lvm, zfs);
//   - bridge: a member's part of a bridge network (netlink bridge, nftables NAT, dnsmasq);
//   - image: container images on one member; image/simplestreams: the simplestreams
//     image index and downloads.
//
// The agent (nodeagent/) imports them. They import nothing of orch (orchestrator/), the
// playbook engine (playbooks/) or the inventory; orch's own playbook modules live in
// orchestrator/modules. imports_test.go at the module root checks these rules.
package modules
