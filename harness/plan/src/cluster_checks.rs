//! Semantic checks of `topology.clusters` and of what refers to a cluster (clients' `via`,
//! `moveip` faults, `kill` with `process`).

use std::collections::BTreeMap;

use crate::addresses::{in_lab_network, public_addresses, LAB_BROADCAST, LAB_NETWORK};
use crate::error::Problem;
use crate::model::{
    AdminCommand, Cluster, Fault, FaultKind, Plan, Provider, SambaVersion, SmbClients,
};

/// Cluster names become node-name prefixes (`<name>-<n>`, at most 15 characters).
pub const MAX_CLUSTER_NAME_LEN: usize = 12;
pub const MAX_CLUSTER_NODES: u32 = 8;

pub(crate) fn check(plan: &Plan, problems: &mut Vec<Problem>) {
    let mut seen_public = BTreeMap::new();
    let node_addresses: Vec<_> = plan
        .topology
        .servers
        .iter()
        .filter_map(|s| s.address.as_ref().map(|a| a.value))
        .chain(
            plan.topology
                .clients
                .iter()
                .filter_map(|c| c.address.as_ref().map(|a| a.value)),
        )
        .collect();
    for cluster in &plan.topology.clusters {
        let name = &cluster.name;
        if name.len() > MAX_CLUSTER_NAME_LEN || !crate::validate::valid_node_name(name) {
            problems.push(Problem::at(
                name,
                format!(
                    "invalid cluster name `{}`; a cluster name is a lowercase letter followed by at most {} lowercase letters, digits or `-` (its nodes are `<name>-0`, `<name>-1`, ...)",
                    name.value,
                    MAX_CLUSTER_NAME_LEN - 1
                ),
            ));
        }
        if !(1..=MAX_CLUSTER_NODES).contains(&cluster.nodes.value) {
            problems.push(Problem::at(
                &cluster.nodes,
                format!(
                    "a cluster has 1 to {MAX_CLUSTER_NODES} nodes, not {}",
                    cluster.nodes.value
                ),
            ));
        }
        for a in &cluster.public_addresses {
            let v = a.value;
            if !in_lab_network(v) || v == LAB_NETWORK || v == LAB_BROADCAST {
                problems.push(Problem::at(
                    a,
                    format!(
                        "public address {v} is not a host address of the lab network 198.18.0.0/15"
                    ),
                ));
            } else if node_addresses.contains(&v) {
                problems.push(Problem::at(
                    a,
                    format!("public address {v} is already a node's address"),
                ));
            } else if let Some(first) = seen_public.insert(v, name.value.clone()) {
                problems.push(Problem::at(
                    a,
                    format!("public address {v} is already a public address of cluster `{first}`"),
                ));
            }
        }
        if cluster.witness.value
            && (plan.topology.provider != Provider::Docker || cluster.samba < SambaVersion::V4_22)
        {
            problems.push(Problem::at(
                &cluster.witness,
                format!(
                    "cluster `{}` runs the Witness service, which Samba has from 4.20 on; this cluster runs Samba {} on the {} provider: add `samba: \"4.22\"` to the cluster and `provider: docker` to the topology",
                    name.value, cluster.samba, plan.topology.provider
                ),
            ));
        }
        for key in cluster.tunables.keys() {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(Problem::at(
                    name,
                    format!("tunable `{key}` of cluster `{}` is not a ctdb tunable name (letters and digits, e.g. `KeepaliveLimit`)", name.value),
                ));
            }
        }
    }
    for fault in &plan.faults {
        let cluster_of = |node: &str| cluster_of(plan, node);
        if let Some(process) = &fault.process {
            if fault.node.as_ref().and_then(|n| cluster_of(n)).is_none() {
                problems.push(Problem::at(
                    process,
                    "`process` picks a daemon of a cluster node; `node` must name one",
                ));
            }
        }
        if matches!(*fault.kind, FaultKind::Crash | FaultKind::Isolate) {
            if let Some(a) = &fault.address {
                if fault.node.is_some() {
                    problems.push(Problem::at(
                        a,
                        "a `crash` or `isolate` fault takes `node` or `address` (the node hosting it), not both",
                    ));
                } else if crate::addresses::cluster_of_public(plan, a.value).is_none() {
                    problems.push(Problem::at(
                        a,
                        format!("{} is not a public address of any cluster", a.value),
                    ));
                }
            }
        }
        if matches!(*fault.kind, FaultKind::Admin | FaultKind::Isolate) {
            let name = crate::fault_checks::kind_name(*fault.kind);
            if let Some(node) = &fault.node {
                if cluster_of(node).is_none() {
                    problems.push(Problem::at(
                        node,
                        format!(
                            "an `{name}` fault acts on a cluster node, and `{}` is not one",
                            node.value
                        ),
                    ));
                }
            }
        }
        if *fault.kind == FaultKind::Admin {
            match &fault.command {
                None => problems.push(Problem::at(
                    &fault.kind,
                    "an `admin` fault needs `command`: stop, disable or ban",
                )),
                Some(c) if c.value != AdminCommand::Ban => {
                    if let Some(t) = &fault.ban_time {
                        problems.push(Problem::at(t, "`ban_time` applies to `command: ban` only"));
                    }
                }
                Some(_) => {}
            }
        }
        if *fault.kind == FaultKind::ClientMove {
            match fault.node.as_ref().map(|n| (n, cluster_of(n))) {
                Some((_, Some(cluster))) => {
                    if !cluster.witness.value {
                        problems.push(Problem::at(
                            &fault.kind,
                            format!(
                                "a `client_move` fault tells witness clients to move, and cluster `{}` runs no Witness service: add `witness: true` to it",
                                cluster.name.value
                            ),
                        ));
                    }
                    check_public_address(plan, fault, cluster, "a `client_move` fault needs `address`: the public address clients are told to move to", problems);
                }
                Some((node, None)) => problems.push(Problem::at(
                    node,
                    format!(
                        "a `client_move` fault runs `net witness client-move` on a cluster node, and `{}` is not one",
                        node.value
                    ),
                )),
                None => {}
            }
        }
        if *fault.kind == FaultKind::Moveip {
            let Some(node) = &fault.node else { continue };
            let named = plan
                .topology
                .clusters
                .iter()
                .find(|c| c.name.value == node.value);
            let Some(cluster) = named.or_else(|| cluster_of(node)) else {
                problems.push(Problem::at(
                    node,
                    format!(
                        "a `moveip` fault moves an address to a cluster node, and `{}` is not one",
                        node.value
                    ),
                ));
                continue;
            };
            check_public_address(
                plan,
                fault,
                cluster,
                "a `moveip` fault needs `address`: the public address to move",
                problems,
            );
        }
    }
}

/// A client with `witness: true` needs a cluster that runs the Witness service.
pub(crate) fn check_witness(plan: &Plan, c: &SmbClients, problems: &mut Vec<Problem>) {
    if !c.witness.value {
        return;
    }
    match plan
        .topology
        .clusters
        .iter()
        .find(|k| k.name.value == c.server.value)
    {
        None => problems.push(Problem::at(
            &c.witness,
            format!(
                "`witness: true` registers with a cluster's Witness service, and `{}` is not a cluster: name a cluster with `witness: true` as `server`",
                c.server.value
            ),
        )),
        Some(k) if !k.witness.value => problems.push(Problem::at(
            &c.witness,
            format!(
                "`witness: true` registers with cluster `{}`'s Witness service, and it runs none: add `witness: true` to the cluster (Samba 4.20 or later: `samba: \"4.22\"`, `provider: docker`)",
                k.name.value
            ),
        )),
        Some(_) => {}
    }
}

/// A client's `via` must be a public address of the cluster it names.
pub(crate) fn check_via(plan: &Plan, c: &SmbClients, problems: &mut Vec<Problem>) {
    let Some(via) = &c.via else { return };
    match plan
        .topology
        .clusters
        .iter()
        .find(|k| k.name.value == c.server.value)
    {
        None => problems.push(Problem::at(
            via,
            format!(
                "`via` picks a public address of a cluster, and `{}` is not a cluster",
                c.server.value
            ),
        )),
        Some(k) => {
            let publics = &public_addresses(plan)[&k.name.value];
            if !publics.contains(&via.value) {
                problems.push(Problem::at(
                    via,
                    format!(
                        "{} is not a public address of cluster `{}`; they are: {}",
                        via.value,
                        k.name.value,
                        list(publics)
                    ),
                ));
            }
        }
    }
}

/// The cluster a node belongs to.
pub fn cluster_of<'a>(plan: &'a Plan, node: &str) -> Option<&'a Cluster> {
    plan.topology
        .clusters
        .iter()
        .find(|c| c.node_names().iter().any(|n| n == node))
}

/// A fault's `address` is one of `cluster`'s public addresses (`missing`: the error when
/// it has none).
fn check_public_address(
    plan: &Plan,
    fault: &Fault,
    cluster: &Cluster,
    missing: &str,
    problems: &mut Vec<Problem>,
) {
    let publics = &public_addresses(plan)[&cluster.name.value];
    match &fault.address {
        None => problems.push(Problem::at(&fault.kind, missing)),
        Some(a) if !publics.contains(&a.value) => problems.push(Problem::at(
            a,
            format!(
                "{} is not a public address of cluster `{}`; they are: {}",
                a.value,
                cluster.name.value,
                list(publics)
            ),
        )),
        Some(_) => {}
    }
}

fn list(addresses: &[std::net::Ipv4Addr]) -> String {
    addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
