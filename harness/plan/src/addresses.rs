//! Node addresses: the lab network and automatic assignment.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::model::Plan;

/// The lab network, 198.18.0.0/15 (RFC 2544 benchmarking space).
pub const LAB_NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// Prefix length of the lab network.
pub const LAB_PREFIX_LEN: u8 = 15;
/// Broadcast address of the lab network.
pub const LAB_BROADCAST: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 255);
/// First public address of a cluster handed out automatically.
pub const FIRST_AUTO_PUBLIC_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
/// First address handed out automatically.
pub const FIRST_AUTO_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

const LAB_MASK: u32 = !(u32::MAX >> LAB_PREFIX_LEN);

/// Whether `addr` is in 198.18.0.0/15 (network and broadcast addresses included).
pub fn in_lab_network(addr: Ipv4Addr) -> bool {
    u32::from(addr) & LAB_MASK == u32::from(LAB_NETWORK)
}

/// Whether `addr` can be a node's address: in the lab network and neither its network nor its
/// broadcast address.
pub fn is_host_address(addr: Ipv4Addr) -> bool {
    in_lab_network(addr) && addr != LAB_NETWORK && addr != LAB_BROADCAST
}

/// Every node's address, by node name: its address on its first network (see
/// `networks::attachments` for the others). Explicit addresses are kept; the other nodes
/// (servers first, then cluster nodes, then clients, in plan order) get the lowest free
/// addresses from 198.18.0.10 (or their network's 10th address) upward.
///
/// Meant for validated plans; on an invalid one it still returns without panicking (a name
/// given twice keeps its first address; nodes that find no free address are left out).
pub fn addresses(plan: &Plan) -> BTreeMap<String, Ipv4Addr> {
    crate::networks::attachments(plan)
        .into_iter()
        .filter_map(|(name, links)| Some((name, links.first()?.address)))
        .collect()
}

pub use crate::networks::public_addresses;

/// The cluster a public address belongs to.
pub fn cluster_of_public(plan: &Plan, address: Ipv4Addr) -> Option<String> {
    public_addresses(plan)
        .into_iter()
        .find(|(_, list)| list.contains(&address))
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_bounds() {
        assert!(in_lab_network(Ipv4Addr::new(198, 18, 0, 0)));
        assert!(in_lab_network(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(!in_lab_network(Ipv4Addr::new(198, 17, 255, 255)));
        assert!(!in_lab_network(Ipv4Addr::new(198, 20, 0, 0)));
        assert!(!is_host_address(LAB_NETWORK));
        assert!(!is_host_address(LAB_BROADCAST));
        assert!(is_host_address(Ipv4Addr::new(198, 19, 0, 0)));
    }
}
