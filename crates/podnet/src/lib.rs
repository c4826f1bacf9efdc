//! Pod network on a node: bridge, veth pairs, IPAM and host-gw routes over netlink.
