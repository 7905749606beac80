//! Networks: which segments of the wire a plan has, which ones each node joins (and on which
//! interface), and every node's address on each. A plan without `topology.networks` has one
//! network, `lab`, spanning 198.18.0.0/15, with exactly the addresses `addresses` gives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::addresses::{in_lab_network, LAB_NETWORK, LAB_PREFIX_LEN};
use crate::model::{Cluster, Plan};

/// The one network of a plan that declares none.
pub const DEFAULT_NETWORK: &str = "lab";
/// Prefix length of a declared network without a `subnet` (in a plan with several).
pub const AUTO_PREFIX_LEN: u8 = 24;
/// Longest prefix a subnet may have: room for a few nodes and public addresses.
pub const MAX_PREFIX_LEN: u8 = 29;
/// Offset of the first address handed out automatically in a subnet.
const FIRST_HOST: u32 = 10;

/// One network as the lab builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub base: Ipv4Addr,
    pub prefix_len: u8,
    pub mtu: u32,
    /// Cap of each node's link, each direction.
    pub rate_bps: Option<u64>,
    pub capture: bool,
}

impl NetworkSpec {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let mask = mask(self.prefix_len);
        u32::from(a) & mask == u32::from(self.base) & mask
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !mask(self.prefix_len))
    }

    /// A usable host address of this network (not its network or broadcast address).
    pub fn is_host(&self, a: Ipv4Addr) -> bool {
        self.contains(a) && a != self.base && a != self.broadcast()
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix_len)
    }

    /// `198.18.1.0/24`
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.base, self.prefix_len)
    }
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

/// `a.b.c.d/n` with no host bits set, inside 198.18.0.0/15.
pub fn parse_subnet(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("invalid subnet `{text}`; write it like 198.18.1.0/24");
    let (addr, len) = text.trim().split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(LAB_PREFIX_LEN..=MAX_PREFIX_LEN).contains(&len) || !in_lab_network(addr) {
        return Err(format!(
            "subnet {text} is not inside the lab network 198.18.0.0/15 (prefix /{LAB_PREFIX_LEN} to /{MAX_PREFIX_LEN})"
        ));
    }
    if u32::from(addr) & !mask(len) != 0 {
        return Err(format!(
            "subnet {text} has host bits set; its network address is {}/{len}",
            Ipv4Addr::from(u32::from(addr) & mask(len))
        ));
    }
    Ok((addr, len))
}

/// Do two subnets share an address?
pub fn overlap(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// The plan's networks in declaration order (or the one default network). Subnets that fail
/// to parse or overlap are left to validation; here they are replaced so nothing panics.
pub fn networks(plan: &Plan) -> Vec<NetworkSpec> {
    let t = &plan.topology;
    if t.networks.is_empty() {
        return vec![NetworkSpec {
            name: DEFAULT_NETWORK.into(),
            base: LAB_NETWORK,
            prefix_len: LAB_PREFIX_LEN,
            mtu: t.mtu,
            rate_bps: None,
            capture: true,
        }];
    }
    let declared: Vec<Option<(Ipv4Addr, u8)>> = t
        .networks
        .iter()
        .map(|n| n.subnet.as_ref().and_then(|s| parse_subnet(s).ok()))
        .collect();
    let mut taken: Vec<(Ipv4Addr, u8)> = declared.iter().flatten().copied().collect();
    let mut out = Vec::new();
    for (n, subnet) in t.networks.iter().zip(declared) {
        let (base, prefix_len) = match subnet {
            Some(s) => s,
            None if t.networks.len() == 1 => (LAB_NETWORK, LAB_PREFIX_LEN),
            None => {
                let free = (0..512u32)
                    .map(|i| {
                        (
                            Ipv4Addr::from(u32::from(LAB_NETWORK) + (i << 8)),
                            AUTO_PREFIX_LEN,
                        )
                    })
                    .find(|c| !taken.iter().any(|t| overlap(*t, *c)))
                    .unwrap_or((LAB_NETWORK, AUTO_PREFIX_LEN));
                taken.push(free);
                free
            }
        };
        out.push(NetworkSpec {
            name: n.name.value.clone(),
            base,
            prefix_len,
            mtu: n.mtu.as_ref().map(|m| m.value).unwrap_or(t.mtu),
            rate_bps: n.rate.as_ref().map(|r| r.bits_per_second),
            capture: n.capture,
        });
    }
    out
}

/// The networks a cluster's nodes join, in interface order.
pub fn cluster_networks(plan: &Plan, c: &Cluster) -> Vec<String> {
    names_or_first(&first_network(plan), &c.networks)
}

/// The cluster's client-facing network: where its public addresses live.
pub fn public_network(plan: &Plan, c: &Cluster) -> String {
    c.public_network
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| cluster_networks(plan, c).remove(0))
}

/// The cluster's private network: its nodes' CTDB addresses.
pub fn private_network(plan: &Plan, c: &Cluster) -> String {
    c.private_network
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| cluster_networks(plan, c).pop().unwrap_or_default())
}

/// The network a node joins when it names none.
fn first_network(plan: &Plan) -> String {
    plan.topology
        .networks
        .first()
        .map(|n| n.name.value.clone())
        .unwrap_or_else(|| DEFAULT_NETWORK.to_string())
}

fn names_or_first(first: &str, names: &[crate::Spanned<String>]) -> Vec<String> {
    if names.is_empty() {
        vec![first.to_string()]
    } else {
        names.iter().map(|n| n.value.clone()).collect()
    }
}

/// Every node with the networks it joins (interface order) and its explicit first address,
/// in plan order: servers, cluster nodes, clients.
pub fn node_networks(plan: &Plan) -> Vec<(String, Vec<String>, Option<Ipv4Addr>)> {
    let t = &plan.topology;
    let first = first_network(plan);
    let mut out = Vec::new();
    for s in &t.servers {
        out.push((
            s.name.value.clone(),
            names_or_first(&first, &s.networks),
            s.address.as_ref().map(|a| a.value),
        ));
    }
    for c in &t.clusters {
        let joins = names_or_first(&first, &c.networks);
        for n in c.node_names() {
            out.push((n, joins.clone(), None));
        }
    }
    for c in &t.clients {
        out.push((
            c.name.value.clone(),
            names_or_first(&first, &c.networks),
            c.address.as_ref().map(|a| a.value),
        ));
    }
    out
}

/// A node's link to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    /// `eth0`, `eth1`, ... in the order the node names its networks.
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

/// Every node's links, by node name: on each network it joins, its explicit address (the
/// first network's) or the lowest free one from the subnet's 10th address up (public addresses
/// of clusters are never handed out). In a plan without networks this is exactly `addresses`.
///
/// Meant for validated plans; on an invalid one it still returns without panicking (a node
/// that finds no free address on a network has no link to it).
pub fn attachments(plan: &Plan) -> BTreeMap<String, Vec<Attachment>> {
    let nets = networks(plan);
    let nodes = node_networks(plan);
    let explicit_publics: BTreeSet<Ipv4Addr> = plan
        .topology
        .clusters
        .iter()
        .flat_map(|c| c.public_addresses.iter().map(|a| a.value))
        .collect();
    let mut out: BTreeMap<String, Vec<Attachment>> = BTreeMap::new();
    for net in &nets {
        let mut taken = explicit_publics.clone();
        let mut here: BTreeMap<&str, Ipv4Addr> = BTreeMap::new();
        for (name, joins, address) in &nodes {
            if joins.first() == Some(&net.name) {
                if let Some(a) = address {
                    taken.insert(*a);
                    here.entry(name.as_str()).or_insert(*a);
                }
            }
        }
        let mut next = u32::from(net.base) + FIRST_HOST.min(net.size() - 2);
        let last = u32::from(net.broadcast()) - 1;
        for (name, joins, _) in &nodes {
            if !joins.contains(&net.name) || here.contains_key(name.as_str()) {
                continue;
            }
            while next <= last && taken.contains(&Ipv4Addr::from(next)) {
                next += 1;
            }
            if next > last {
                break;
            }
            taken.insert(Ipv4Addr::from(next));
            here.insert(name.as_str(), Ipv4Addr::from(next));
            next += 1;
        }
        for (name, joins, _) in &nodes {
            let (Some(i), Some(&address)) = (
                joins.iter().position(|j| *j == net.name),
                here.get(name.as_str()),
            ) else {
                continue;
            };
            out.entry(name.clone()).or_default().push(Attachment {
                network: net.name.clone(),
                interface: format!("eth{i}"),
                address,
                prefix_len: net.prefix_len,
            });
        }
    }
    for links in out.values_mut() {
        links.sort_by(|a, b| a.interface.cmp(&b.interface));
    }
    out
}

/// Every cluster's public addresses, by cluster name: the plan's, or one per node from the
/// middle of its public network's subnet + 10 up (198.19.0.10 on the default network),
/// skipping any address a node or another cluster has.
pub fn public_addresses(plan: &Plan) -> BTreeMap<String, Vec<Ipv4Addr>> {
    let nets = networks(plan);
    let mut taken: BTreeSet<Ipv4Addr> = attachments(plan)
        .into_values()
        .flatten()
        .map(|a| a.address)
        .collect();
    for c in &plan.topology.clusters {
        taken.extend(c.public_addresses.iter().map(|a| a.value));
    }
    let mut next: BTreeMap<String, u32> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for c in &plan.topology.clusters {
        let list: Vec<Ipv4Addr> = if c.public_addresses.is_empty() {
            let network = public_network(plan, c);
            let mut list = Vec::new();
            if let Some(net) = nets.iter().find(|n| n.name == network) {
                let last = u32::from(net.broadcast());
                let cursor = next.entry(network.clone()).or_insert(
                    u32::from(net.base) + net.size() / 2 + FIRST_HOST.min(net.size() / 2 - 2),
                );
                while list.len() < c.nodes.value as usize && *cursor < last {
                    let a = Ipv4Addr::from(*cursor);
                    *cursor += 1;
                    if taken.insert(a) {
                        list.push(a);
                    }
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

/// The networks `a` and `b` both join, in `a`'s interface order.
pub fn shared_networks(plan: &Plan, a: &str, b: &str) -> Vec<String> {
    let nodes = node_networks(plan);
    let of = |n: &str| {
        nodes
            .iter()
            .find(|(name, _, _)| name == n)
            .map(|(_, j, _)| j.clone())
            .unwrap_or_default()
    };
    let theirs = of(b);
    of(a).into_iter().filter(|n| theirs.contains(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        assert_eq!(
            parse_subnet("198.18.1.0/24"),
            Ok((Ipv4Addr::new(198, 18, 1, 0), 24))
        );
        assert!(parse_subnet("10.0.0.0/24")
            .unwrap_err()
            .contains("not inside"));
        assert!(parse_subnet("198.18.1.1/24")
            .unwrap_err()
            .contains("host bits"));
        assert!(parse_subnet("198.18.0.0/14").is_err());
        assert!(parse_subnet("198.18.0.0/31").is_err());
        assert!(parse_subnet("nonsense").is_err());
        assert!(parse_subnet("198.18.0.0/").is_err());
        let a = (Ipv4Addr::new(198, 18, 0, 0), 16);
        assert!(overlap(a, (Ipv4Addr::new(198, 18, 5, 0), 24)));
        assert!(!overlap(a, (Ipv4Addr::new(198, 19, 5, 0), 24)));
    }
}
