//! Semantic checks: what a well-formed plan file may still get wrong.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::addresses::{in_lab_network, LAB_BROADCAST, LAB_NETWORK};
use crate::error::Problem;
use crate::model::{Plan, Step};
use crate::Spanned;

/// The only plan version this smbchaos reads.
pub const PLAN_VERSION: u32 = 1;

/// Longest node name: node names become parts of interface and namespace names.
pub const MAX_NODE_NAME_LEN: usize = 15;

/// Share names smb.conf gives a meaning of its own.
const RESERVED_SHARE_NAMES: [&str; 3] = ["global", "homes", "printers"];
/// Characters Windows and Samba refuse in a share name.
const BAD_SHARE_CHARS: &str = "\"/\\[]:|<>+=;,?*";
const MAX_SHARE_NAME_LEN: usize = 80;

/// Every semantic problem of `plan`, in file order (problems without a location last).
/// `servers_at` is where `topology.servers` is written, if known.
pub(crate) fn check(plan: &Plan, servers_at: Option<(usize, usize)>) -> Vec<Problem> {
    let mut problems = Vec::new();

    if plan.version.value != PLAN_VERSION {
        problems.push(Problem::at(
            &plan.version,
            format!(
                "unsupported plan version {}; this smbchaos reads version {PLAN_VERSION}",
                plan.version.value
            ),
        ));
    }

    if !valid_plan_name(&plan.name) {
        problems.push(Problem::at(
            &plan.name,
            format!(
                "plan name `{}` cannot be used as a directory name; use letters, digits, `.`, `_` and `-` (not `.` or `..`)",
                plan.name.value
            ),
        ));
    }

    if let Some(limit) = &plan.topology.capture_limit {
        if limit.value.max_bytes.0 < 1 << 20 {
            problems.push(Problem::at(
                limit,
                format!(
                    "capture_limit max_bytes {} is below 1MiB",
                    limit.value.max_bytes
                ),
            ));
        }
        if !(1..=1000).contains(&limit.value.rotate) {
            problems.push(Problem::at(
                limit,
                format!(
                    "capture_limit rotate {} is outside 1..=1000",
                    limit.value.rotate
                ),
            ));
        }
    }
    if let Some(rate) = &plan.flake_rate {
        if !(0.0..=100.0).contains(&rate.value.0) {
            problems.push(Problem::at(
                rate,
                format!("flake_rate {} is outside 0-100%", rate.value),
            ));
        }
    }

    if plan.topology.servers.is_empty() && plan.topology.clusters.is_empty() {
        let (line, column) = servers_at.unwrap_or((0, 0));
        problems.push(Problem::new(
            line,
            column,
            "a plan must have at least one server or cluster",
        ));
    }
    crate::cluster_checks::check(plan, &mut problems);
    crate::network_checks::check(plan, &mut problems);
    crate::network_checks::check_multichannel(plan, &mut problems);
    check_disks(plan, &mut problems);
    // Cluster nodes are named after their cluster, whose name stands for them in errors.
    let cluster_nodes: Vec<(Spanned<String>, Option<&Spanned<Ipv4Addr>>)> = plan
        .topology
        .clusters
        .iter()
        .flat_map(|c| {
            c.node_names()
                .into_iter()
                .map(|n| (c.name.clone().map(|_| n), None))
        })
        .collect();

    // Node names: servers and clients share one namespace.
    let nodes: Vec<(&Spanned<String>, Option<&Spanned<Ipv4Addr>>)> = plan
        .topology
        .servers
        .iter()
        .map(|s| (&s.name, s.address.as_ref()))
        .chain(cluster_nodes.iter().map(|(n, a)| (n, *a)))
        .chain(
            plan.topology
                .clients
                .iter()
                .map(|c| (&c.name, c.address.as_ref())),
        )
        .collect();
    let mut seen_names: BTreeMap<&str, &Spanned<String>> = BTreeMap::new();
    for &(name, _) in &nodes {
        // A cluster node's name is its cluster's, checked with the cluster.
        let of_cluster = cluster_nodes.iter().any(|(n, _)| std::ptr::eq(n, name));
        if !of_cluster && name.is_empty() {
            problems.push(Problem::at(
                name,
                format!("empty node name; {NODE_NAME_RULE}"),
            ));
        } else if !of_cluster && !valid_node_name(name) {
            problems.push(Problem::at(
                name,
                format!("invalid node name `{}`; {NODE_NAME_RULE}", name.value),
            ));
        }
        if let Some(first) = seen_names.get(name.as_str()) {
            problems.push(Problem::at(
                name,
                format!("duplicate node name `{}`{}", name.value, first_at(first)),
            ));
        } else {
            seen_names.insert(name, name);
        }
    }

    // Addresses.
    let mut seen_addresses: BTreeMap<Ipv4Addr, &Spanned<String>> = BTreeMap::new();
    for &(name, address) in &nodes {
        let Some(address) = address else { continue };
        let a = address.value;
        if !in_lab_network(a) {
            problems.push(Problem::at(
                address,
                format!("address {a} is outside the lab network 198.18.0.0/15"),
            ));
        } else if a == LAB_NETWORK {
            problems.push(Problem::at(
                address,
                format!("address {a} is the network address of 198.18.0.0/15"),
            ));
        } else if a == LAB_BROADCAST {
            problems.push(Problem::at(
                address,
                format!("address {a} is the broadcast address of 198.18.0.0/15"),
            ));
        }
        if let Some(first) = seen_addresses.get(&a) {
            problems.push(Problem::at(
                address,
                format!("address {a} is already used by node `{}`", first.value),
            ));
        } else {
            seen_addresses.insert(a, name);
        }
    }

    // Shares, per server and cluster.
    let share_sets = plan
        .topology
        .servers
        .iter()
        .map(|s| (&s.name, &s.shares))
        .chain(plan.topology.clusters.iter().map(|c| (&c.name, &c.shares)));
    for (server_name, shares) in share_sets {
        let mut seen: BTreeMap<String, &Spanned<String>> = BTreeMap::new();
        for share in shares {
            let name = &share.name;
            if let Some(reserved) = RESERVED_SHARE_NAMES
                .iter()
                .find(|r| r.eq_ignore_ascii_case(name))
            {
                problems.push(Problem::at(
                    name,
                    format!("share name `{}` is reserved in smb.conf (`[{reserved}]`); choose another name", name.value),
                ));
            } else if !valid_share_name(name) {
                problems.push(Problem::at(
                    name,
                    format!("invalid share name `{}`; {SHARE_NAME_RULE}", name.value),
                ));
            }
            // smb.conf section names are case-insensitive.
            let key = name.to_lowercase();
            if let Some(first) = seen.get(&key) {
                problems.push(Problem::at(
                    name,
                    format!(
                        "duplicate share name `{}` on server `{}`{}",
                        name.value,
                        server_name.value,
                        first_at(first)
                    ),
                ));
            } else {
                seen.insert(key, name);
            }
        }
    }

    // Workload steps.
    let cluster_node_names: Vec<String> = plan
        .topology
        .clusters
        .iter()
        .flat_map(|c| c.node_names())
        .collect();
    let server_names = unique(
        plan.topology
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(cluster_node_names.iter().map(String::as_str)),
    );
    let services = unique(
        plan.topology
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(plan.topology.clusters.iter().map(|c| c.name.as_str())),
    );
    let client_names = unique(plan.topology.clients.iter().map(|c| c.name.as_str()));
    let clients_are = if client_names.is_empty() {
        "the plan has no clients".to_string()
    } else {
        format!("clients are: {}", client_names.join(", "))
    };
    for step in &plan.workload.steps {
        match step {
            Step::Exec(exec) => {
                let client = &exec.client;
                if client_names.contains(&client.as_str()) {
                    continue;
                }
                let message = if server_names.contains(&client.as_str()) {
                    format!(
                        "`{}` is a server, but an exec step runs on a client; {clients_are}",
                        client.value
                    )
                } else {
                    format!("unknown client `{}`; {clients_are}", client.value)
                };
                problems.push(Problem::at(client, message));
            }
        }
    }

    // SMB workload clients.
    for c in &plan.workload.clients {
        if !client_names.contains(&c.node.as_str()) {
            problems.push(Problem::at(
                &c.node,
                format!("unknown client `{}`; {clients_are}", c.node.value),
            ));
        }
        let service = plan
            .topology
            .servers
            .iter()
            .find(|s| s.name.value == c.server.value)
            .map(|s| (&s.name, &s.shares))
            .or_else(|| {
                plan.topology
                    .clusters
                    .iter()
                    .find(|k| k.name.value == c.server.value)
                    .map(|k| (&k.name, &k.shares))
            });
        crate::cluster_checks::check_via(plan, c, &mut problems);
        crate::cluster_checks::check_witness(plan, c, &mut problems);
        match service {
            None => problems.push(Problem::at(
                &c.server,
                format!(
                    "unknown server or cluster `{}`; they are: {}",
                    c.server.value,
                    services.join(", ")
                ),
            )),
            Some((server_name, server_shares)) => {
                if !server_shares
                    .iter()
                    .any(|s| s.name.value.eq_ignore_ascii_case(&c.share.value))
                {
                    let shares: Vec<&str> = server_shares.iter().map(|s| s.name.as_str()).collect();
                    problems.push(Problem::at(
                        &c.share,
                        format!(
                            "server `{}` has no share `{}`; its shares are: {}",
                            server_name.value,
                            c.share.value,
                            shares.join(", ")
                        ),
                    ));
                }
            }
        }
        for (what, v) in [("write_size", &c.write_size), ("file_size", &c.file_size)] {
            if v.value == 0 || v.value % 8 != 0 {
                problems.push(Problem::at(v, format!("`{what}` must be a positive multiple of 8 bytes (written content is traced in 8-byte words)")));
            }
        }
        if c.write_size.value > c.file_size.value {
            problems.push(Problem::at(
                &c.write_size,
                "`write_size` is larger than `file_size`",
            ));
        }
        if !c.lease.value.chars().all(|ch| "RWH".contains(ch))
            || (!c.lease.is_empty() && !c.lease.contains('R'))
        {
            problems.push(Problem::at(
                &c.lease,
                format!(
                    "invalid lease `{}`; a lease is R, RH, RW or RWH (empty for none)",
                    c.lease.value
                ),
            ));
        }
        if c.durable == crate::model::DurableKind::V2
            && matches!(
                c.dialect,
                crate::model::DialectChoice::Smb202 | crate::model::DialectChoice::Smb21
            )
        {
            problems.push(Problem::at(
                &c.node,
                "durable v2 handles need dialect 3.0 or later",
            ));
        }
    }
    if !plan.workload.clients.is_empty() && plan.workload.duration.is_none() {
        problems.push(Problem::at(
            &plan.workload.clients[0].node,
            "SMB workload clients need `workload.duration`",
        ));
    }
    phases(&plan.workload, &mut problems);

    // Faults.
    crate::fault_checks::check(plan, &server_names, &client_names, &mut problems);

    let granted = std::iter::once(plan.expect.granted.as_ref())
        .chain(plan.expect.samba.values().map(|o| o.value.granted.as_ref()));
    for lease in granted.flatten().filter_map(|g| g.lease.as_ref()) {
        let order_ok = ["R", "RW", "RH", "RWH"].contains(&lease.value.as_str());
        if !order_ok {
            problems.push(Problem::at(
                lease,
                format!(
                    "invalid granted lease `{}`; a lease is R, RH, RW or RWH",
                    lease.value
                ),
            ));
        }
    }
    // Per-release expectations judge a run whose servers all run one release.
    if let Some(first) = plan.expect.samba.values().next() {
        let mut versions: Vec<String> = plan
            .topology
            .servers
            .iter()
            .map(|s| format!("server {} {}", s.name.value, s.samba))
            .chain(
                plan.topology
                    .clusters
                    .iter()
                    .map(|c| format!("cluster {} {}", c.name.value, c.samba)),
            )
            .collect();
        if plan.samba_version().is_none() && !versions.is_empty() {
            versions.sort();
            problems.push(Problem::at(
                first,
                format!(
                    "`expect.samba` overrides apply when every server and cluster runs one Samba release, but here they differ ({})",
                    versions.join(", ")
                ),
            ));
        }
    }

    problems.sort_by_key(|p| (p.line == 0, p.line, p.column));
    problems
}

const NODE_NAME_RULE: &str =
    "a node name is a lowercase letter followed by at most 14 lowercase letters, digits or `-`";

const SHARE_NAME_RULE: &str = "a share name has 1 to 80 characters, does not start with `.` or a space, \
     does not end with a space, and has no control characters or any of \" / \\ [ ] : | < > + = ; , ? *";

/// The names in order, each once.
fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn first_at<T>(first: &Spanned<T>) -> String {
    match first.location() {
        Some((line, column)) => format!(" (first defined at line {line}, column {column})"),
        None => String::new(),
    }
}

/// `[a-z][a-z0-9-]{0,14}`
pub fn valid_node_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NODE_NAME_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `[A-Za-z0-9._-]+`, and not `.` or `..`.
pub fn valid_plan_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A usable smb.conf section name that is also a safe directory name (reserved names aside).
pub fn valid_share_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_SHARE_NAME_LEN).contains(&count)
        && !name.starts_with(['.', ' '])
        && !name.ends_with(' ')
        && !name
            .chars()
            .any(|c| c.is_control() || BAD_SHARE_CHARS.contains(c))
}

/// Every phase but the last says how long it lasts, and each starts before the workload ends.
fn phases(w: &crate::model::Workload, problems: &mut Vec<Problem>) {
    if let Some(first) = w.phases.first().filter(|_| w.clients.is_empty()) {
        problems.push(Problem::at(
            first,
            "`phases` pace SMB clients: there are none",
        ));
    }
    let total = w.duration.as_ref().map(|d| d.value.as_duration());
    let mut begins = std::time::Duration::ZERO;
    for (i, phase) in w.phases.iter().enumerate() {
        if total.is_some_and(|t| begins >= t) {
            problems.push(Problem::at(
                phase,
                format!(
                    "phase {} begins at {begins:?}, when the workload's duration is over",
                    i + 1
                ),
            ));
        }
        if phase
            .value
            .rate
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            problems.push(Problem::at(phase, "a phase's `rate` must be above 0"));
        }
        match &phase.value.length {
            Some(l) => begins += l.as_duration(),
            None if i + 1 < w.phases.len() => problems.push(Problem::at(
                phase,
                "every phase but the last needs `for` (how long it lasts)",
            )),
            None => {}
        }
    }
}

/// `disk: lossy` is a FUSE mount under one server's share (netns or docker), not a cluster's.
fn check_disks(plan: &Plan, problems: &mut Vec<Problem>) {
    use crate::model::Disk;
    for cluster in &plan.topology.clusters {
        for share in cluster.shares.iter().filter(|s| s.disk == Disk::Lossy) {
            problems.push(Problem::at(
                &share.name,
                "`disk: lossy` is for a single server's share; a cluster's shares are one directory every node shares",
            ));
        }
    }
}
