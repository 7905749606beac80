//! Semantic checks of `topology.networks` and of everything that names a network: the
//! networks nodes join, clusters' public and private networks, addresses inside subnets,
//! clients that must share a network with their server, and faults scoped to one network.

use std::collections::BTreeMap;

use crate::error::Problem;
use crate::model::{Plan, WireKind};
use crate::networks::{self, overlap, parse_subnet};
use crate::Spanned;

/// MTU bounds of a lab link (what the kernel accepts for a TAP or veth).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65521;

pub(crate) fn check(plan: &Plan, problems: &mut Vec<Problem>) {
    let t = &plan.topology;
    let mut declared: Vec<&str> = Vec::new();
    for n in &t.networks {
        if !declared.contains(&n.name.as_str()) {
            declared.push(n.name.as_str());
        }
    }

    // The networks themselves.
    let mut seen: BTreeMap<&str, &Spanned<String>> = BTreeMap::new();
    let mut subnets: Vec<((std::net::Ipv4Addr, u8), &Spanned<String>)> = Vec::new();
    for n in &t.networks {
        if !crate::validate::valid_node_name(&n.name) {
            problems.push(Problem::at(
                &n.name,
                format!(
                    "invalid network name `{}`; a network name is a lowercase letter followed by at most 14 lowercase letters, digits or `-`",
                    n.name.value
                ),
            ));
        }
        if let Some(first) = seen.insert(n.name.as_str(), &n.name) {
            problems.push(Problem::at(
                &n.name,
                format!(
                    "duplicate network `{}` (first at line {}, column {})",
                    n.name.value,
                    first.line(),
                    first.column()
                ),
            ));
        }
        if let Some(subnet) = &n.subnet {
            match parse_subnet(subnet) {
                Err(e) => problems.push(Problem::at(subnet, e)),
                Ok(parsed) => {
                    if let Some((_, other)) = subnets.iter().find(|(s, _)| overlap(*s, parsed)) {
                        problems.push(Problem::at(
                            subnet,
                            format!(
                                "subnet {} overlaps subnet {} (line {}): networks are separate segments",
                                subnet.value,
                                other.value,
                                other.line()
                            ),
                        ));
                    }
                    subnets.push((parsed, subnet));
                }
            }
        }
        if let Some(mtu) = &n.mtu {
            if !MTU_RANGE.contains(&mtu.value) {
                problems.push(Problem::at(
                    mtu,
                    format!("MTU {} is outside 68..=65521", mtu.value),
                ));
            }
        }
        if let Some(rate) = &n.rate {
            if rate.value.bits_per_second == 0 {
                problems.push(Problem::at(rate, "a network's `rate` must be above 0"));
            }
        }
        if t.wire == WireKind::Kernel && (t.networks.len() > 1 || n.rate.is_some()) {
            problems.push(Problem::at(
                &n.name,
                "`wire: kernel` is one bridge: several networks and rate caps need `wire: userspace` (the default)",
            ));
        }
    }

    let known = |name: &Spanned<String>, problems: &mut Vec<Problem>| -> bool {
        if declared.contains(&name.as_str()) {
            return true;
        }
        let are = if declared.is_empty() {
            "the plan declares no `topology.networks`".to_string()
        } else {
            format!("networks are: {}", declared.join(", "))
        };
        problems.push(Problem::at(
            name,
            format!("unknown network `{}`; {are}", name.value),
        ));
        false
    };

    // What nodes join.
    let lists = t
        .servers
        .iter()
        .map(|s| &s.networks)
        .chain(t.clusters.iter().map(|c| &c.networks))
        .chain(t.clients.iter().map(|c| &c.networks));
    for list in lists {
        for (i, n) in list.iter().enumerate() {
            if known(n, problems) && list[..i].iter().any(|m| m.value == n.value) {
                problems.push(Problem::at(
                    n,
                    format!("network `{}` is named twice", n.value),
                ));
            }
        }
    }

    let nets = networks::networks(plan);
    let net = |name: &str| nets.iter().find(|n| n.name == name);

    // Explicit addresses inside their subnets.
    if !t.networks.is_empty() {
        let first = |list: &[Spanned<String>]| {
            list.first()
                .map(|n| n.value.clone())
                .unwrap_or_else(|| nets[0].name.clone())
        };
        let explicit = t
            .servers
            .iter()
            .map(|s| (s.address.as_ref(), first(&s.networks)))
            .chain(
                t.clients
                    .iter()
                    .map(|c| (c.address.as_ref(), first(&c.networks))),
            );
        for (address, network) in explicit {
            let (Some(a), Some(n)) = (address, net(&network)) else {
                continue;
            };
            if crate::addresses::in_lab_network(a.value) && !n.is_host(a.value) {
                problems.push(Problem::at(
                    a,
                    format!(
                        "address {} is not a host address of network `{network}` ({}), the node's first network",
                        a.value,
                        n.cidr()
                    ),
                ));
            }
        }
    }

    // Clusters: public and private networks among the ones their nodes join.
    for c in &t.clusters {
        let joins = networks::cluster_networks(plan, c);
        for which in [&c.public_network, &c.private_network]
            .into_iter()
            .flatten()
        {
            if known(which, problems) && !joins.contains(&which.value) {
                problems.push(Problem::at(
                    which,
                    format!(
                        "cluster `{}`'s nodes do not join network `{}`; they join: {}",
                        c.name.value,
                        which.value,
                        joins.join(", ")
                    ),
                ));
            }
        }
        let public = networks::public_network(plan, c);
        if let (false, Some(n)) = (t.networks.is_empty(), net(&public)) {
            for a in &c.public_addresses {
                if crate::addresses::in_lab_network(a.value) && !n.is_host(a.value) {
                    problems.push(Problem::at(
                        a,
                        format!(
                            "public address {} is not a host address of cluster `{}`'s public network `{public}` ({})",
                            a.value,
                            c.name.value,
                            n.cidr()
                        ),
                    ));
                }
            }
        }
    }

    // Every node got an address on every network it joins.
    let attached = networks::attachments(plan);
    for (node, joins, _) in networks::node_networks(plan) {
        let have = attached.get(&node).map(Vec::len).unwrap_or(0);
        if have < joins.len() && joins.iter().all(|j| net(j).is_some()) {
            let at = subnet_of(plan, &joins);
            problems.push(Problem::new(
                at.0,
                at.1,
                format!("node `{node}` finds no free address on one of its networks ({}); give the network a larger subnet", joins.join(", ")),
            ));
        }
    }

    // Clients must share a network with the server they use.
    for w in &plan.workload.clients {
        let cluster = t.clusters.iter().find(|c| c.name.value == w.server.value);
        let reaches = match cluster {
            Some(c) => {
                let public = networks::public_network(plan, c);
                let client = networks::node_networks(plan)
                    .into_iter()
                    .find(|(n, _, _)| *n == w.node.value);
                match client {
                    Some((_, joins, _)) if !joins.contains(&public) => Some(format!(
                        "client `{}` does not join network `{public}`, where cluster `{}`'s public addresses are",
                        w.node.value, c.name.value
                    )),
                    _ => None,
                }
            }
            None if t.servers.iter().any(|s| s.name.value == w.server.value)
                && t.clients.iter().any(|c| c.name.value == w.node.value)
                && networks::shared_networks(plan, &w.node, &w.server).is_empty() =>
            {
                Some(format!(
                    "client `{}` shares no network with server `{}`",
                    w.node.value, w.server.value
                ))
            }
            None => None,
        };
        if let Some(message) = reaches {
            problems.push(Problem::at(&w.node, message));
        }
    }

    // Faults scoped to a network: the network exists and every node they name joins it.
    let nodes = networks::node_networks(plan);
    for f in &plan.faults {
        let Some(network) = &f.network else { continue };
        if !known(network, problems) {
            continue;
        }
        let mut named: Vec<&Spanned<String>> = Vec::new();
        named.extend(f.node.iter());
        named.extend(f.peer.iter());
        for list in [&f.from, &f.to, &f.among].into_iter().flatten() {
            named.extend(list.value.iter());
        }
        if let Some(groups) = &f.groups {
            named.extend(groups.value.iter().flatten());
        }
        for n in named {
            let Some((_, joins, _)) = nodes.iter().find(|(name, _, _)| *name == n.value) else {
                continue; // unknown nodes are reported with the fault's other checks
            };
            if !joins.contains(&network.value) {
                problems.push(Problem::at(
                    n,
                    format!(
                        "`{}` does not join network `{}`; it joins: {}",
                        n.value,
                        network.value,
                        joins.join(", ")
                    ),
                ));
            }
        }
    }
}

/// `workload.clients[].multichannel` and the expectations about networks
/// (`expect.network_bytes`, `expect.probe_latency`).
pub(crate) fn check_multichannel(plan: &Plan, problems: &mut Vec<Problem>) {
    let t = &plan.topology;
    let declared: Vec<&str> = t.networks.iter().map(|n| n.name.as_str()).collect();
    let nodes = networks::node_networks(plan);
    let joins_of = |node: &str| {
        nodes
            .iter()
            .find(|(n, _, _)| n == node)
            .map(|(_, j, _)| j.clone())
    };
    let unknown = |name: &Spanned<String>| {
        let are = if declared.is_empty() {
            "the plan declares no `topology.networks`".to_string()
        } else {
            format!("networks are: {}", declared.join(", "))
        };
        Problem::at(name, format!("unknown network `{}`; {are}", name.value))
    };
    for w in &plan.workload.clients {
        let Some(mc) = &w.multichannel else { continue };
        if t.clusters.iter().any(|c| c.name.value == w.server.value) {
            problems.push(Problem::at(
                mc,
                format!(
                    "`multichannel` needs a single server; `{}` is a cluster (Samba offers no multichannel to clustered shares' clients in the lab)",
                    w.server.value
                ),
            ));
            continue;
        }
        if matches!(
            w.dialect,
            crate::model::DialectChoice::Smb202 | crate::model::DialectChoice::Smb21
        ) {
            problems.push(Problem::at(
                mc,
                "`multichannel` needs an SMB 3.x dialect (binding a channel is 3.0 and later)",
            ));
        }
        if let Some(c) = &mc.value.channels {
            if c.value == 0 {
                problems.push(Problem::at(
                    c,
                    "`channels` counts the first channel too: at least 1",
                ));
            }
        }
        for (i, n) in mc.value.networks.iter().enumerate() {
            if !declared.contains(&n.as_str()) {
                problems.push(unknown(n));
                continue;
            }
            if mc.value.networks[..i].iter().any(|m| m.value == n.value) {
                problems.push(Problem::at(
                    n,
                    format!("network `{}` is named twice", n.value),
                ));
            }
            for node in [&w.node.value, &w.server.value] {
                match joins_of(node) {
                    Some(j) if !j.contains(&n.value) => problems.push(Problem::at(
                        n,
                        format!(
                            "`{node}` does not join network `{}`, so no channel can use it; it joins: {}",
                            n.value,
                            j.join(", ")
                        ),
                    )),
                    _ => {}
                }
            }
        }
    }

    let percent = |p: &Spanned<crate::Percent>, problems: &mut Vec<Problem>| {
        if !(0.0..=100.0).contains(&p.value.0) {
            problems.push(Problem::at(p, format!("{} is outside 0-100 %", p.value)));
        }
    };
    for e in &plan.expect.network_bytes {
        match joins_of(&e.node.value) {
            None => problems.push(Problem::at(
                &e.node,
                format!("unknown node `{}`", e.node.value),
            )),
            Some(j) => {
                if !declared.contains(&e.network.as_str()) {
                    problems.push(unknown(&e.network));
                } else if !j.contains(&e.network.value) {
                    problems.push(Problem::at(
                        &e.network,
                        format!(
                            "`{}` does not join network `{}`; it joins: {}",
                            e.node.value,
                            e.network.value,
                            j.join(", ")
                        ),
                    ));
                }
            }
        }
        for p in [&e.at_least, &e.at_most].into_iter().flatten() {
            percent(p, problems);
        }
        match (&e.at_least, &e.at_most) {
            (None, None) => problems.push(Problem::at(
                &e.node,
                "a `network_bytes` entry needs `at_least`, `at_most` or both",
            )),
            (Some(l), Some(m)) if l.value.0 > m.value.0 => problems.push(Problem::at(
                l,
                format!("`at_least` {} is above `at_most` {}", l.value, m.value),
            )),
            _ => {}
        }
    }
    if let Some(p) = &plan.expect.probe_latency {
        for node in [&p.probe, &p.load] {
            if !plan
                .workload
                .clients
                .iter()
                .any(|w| w.node.value == node.value)
            {
                problems.push(Problem::at(
                    node,
                    format!(
                        "`{}` runs no `workload.clients` entry: the probe and the load are SMB workload clients",
                        node.value
                    ),
                ));
            }
        }
        if p.probe.value == p.load.value {
            problems.push(Problem::at(
                &p.load,
                "the probe and the load must be different nodes",
            ));
        }
        for f in [&p.at_least, &p.at_most].into_iter().flatten() {
            if !(f.value.is_finite() && f.value > 0.0) {
                problems.push(Problem::at(
                    f,
                    "a slowdown factor is a number above 0 (e.g. 3 for 3 times slower)",
                ));
            }
        }
        match (&p.at_least, &p.at_most) {
            (None, None) => problems.push(Problem::at(
                &p.probe,
                "`probe_latency` needs `at_least`, `at_most` or both",
            )),
            (Some(l), Some(m)) if l.value > m.value => problems.push(Problem::at(
                l,
                format!("`at_least` {} is above `at_most` {}", l.value, m.value),
            )),
            _ => {}
        }
    }
}

/// Where the first of `joins` that is declared with a subnet is written, else nowhere.
fn subnet_of(plan: &Plan, joins: &[String]) -> (usize, usize) {
    plan.topology
        .networks
        .iter()
        .find(|n| joins.contains(&n.name.value))
        .map(|n| {
            let s = n.subnet.as_ref().map(|s| (s.line(), s.column()));
            s.unwrap_or((n.name.line(), n.name.column()))
        })
        .unwrap_or((0, 0))
}
