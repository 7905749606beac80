//! Node addresses: the lab network and automatic assignment.

use std::collections::{BTreeMap, BTreeSet};
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

/// Every node's address, by node name. Explicit addresses are kept; the other nodes (servers
/// first, then cluster nodes, then clients, in plan order) get the lowest free addresses from
/// 198.18.0.10 upward.
///
/// Meant for validated plans; on an invalid one it still returns without panicking (a name
/// given twice keeps its first address; nodes that find no free address are left out).
pub fn addresses(plan: &Plan) -> BTreeMap<String, Ipv4Addr> {
    let nodes: Vec<(String, Option<Ipv4Addr>)> = plan
        .topology
        .servers
        .iter()
        .map(|s| (s.name.value.clone(), s.address.as_ref().map(|a| a.value)))
        .chain(
            plan.topology
                .clusters
                .iter()
                .flat_map(|c| c.node_names().into_iter().map(|n| (n, None))),
        )
        .chain(
            plan.topology
                .clients
                .iter()
                .map(|c| (c.name.value.clone(), c.address.as_ref().map(|a| a.value))),
        )
        .collect();

    let mut result = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for (name, address) in &nodes {
        if let Some(address) = *address {
            taken.insert(address);
            result.entry(name.to_string()).or_insert(address);
        }
    }
    taken.extend(
        plan.topology
            .clusters
            .iter()
            .flat_map(|c| c.public_addresses.iter().map(|a| a.value)),
    );
    let mut next = u32::from(FIRST_AUTO_ADDRESS);
    let last = u32::from(LAB_BROADCAST) - 1;
    for (name, _) in &nodes {
        let name = name.as_str();
        if result.contains_key(name) {
            continue;
        }
        while next <= last && taken.contains(&Ipv4Addr::from(next)) {
            next += 1;
        }
        if next > last {
            break;
        }
        let address = Ipv4Addr::from(next);
        taken.insert(address);
        result.insert(name.to_string(), address);
        next += 1;
    }
    result
}

/// Every cluster's public addresses, by cluster name: the plan's, or one per node from
/// 198.19.0.10 upward (skipping any address a node or another cluster has).
pub fn public_addresses(plan: &Plan) -> BTreeMap<String, Vec<Ipv4Addr>> {
    let mut taken: BTreeSet<Ipv4Addr> = addresses(plan).into_values().collect();
    for c in &plan.topology.clusters {
        taken.extend(c.public_addresses.iter().map(|a| a.value));
    }
    let mut next = u32::from(FIRST_AUTO_PUBLIC_ADDRESS);
    let mut out = BTreeMap::new();
    for c in &plan.topology.clusters {
        let list: Vec<Ipv4Addr> = if c.public_addresses.is_empty() {
            let mut list = Vec::new();
            while list.len() < c.nodes.value as usize && next < u32::from(LAB_BROADCAST) {
                let a = Ipv4Addr::from(next);
                next += 1;
                if taken.insert(a) {
                    list.push(a);
                }
            }
            list
        } else {
            c.public_addresses.iter().map(|a| a.value).collect()
        };
        out.insert(c.name.value.clone(), list);
    }
    out
}

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
