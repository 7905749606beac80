//! Semantic checks of `faults:`: which keys each kind takes, the nodes they name, value
//! ranges, and faults that contradict each other on one node or link.

use std::time::Duration;

use crate::error::Problem;
use crate::model::{Fault, FaultKind, Plan};
use crate::schedule::{self, Action};
use crate::Spanned;

/// Keys every fault may have.
const COMMON: &[&str] = &["kind", "at", "every", "count", "require_effect"];

/// The keys a kind takes besides COMMON, and whether it takes `for`.
fn keys_of(kind: FaultKind) -> (&'static [&'static str], bool) {
    use FaultKind::*;
    match kind {
        Reset => (&["node", "peer", "port", "side"], false),
        Blackhole => (&["node", "peer", "port", "network"], true),
        Partition => (
            &[
                "node", "groups", "from", "to", "choose", "among", "port", "network",
            ],
            true,
        ),
        Impair => (
            &[
                "node",
                "network",
                "direction",
                "latency",
                "jitter",
                "distribution",
                "loss",
                "loss_correlation",
                "duplicate",
                "reorder",
                "reorder_gap",
                "corrupt",
                "rate",
            ],
            true,
        ),
        Kill => (&["node", "serving", "process"], true),
        Moveip => (&["node", "address"], false),
        ClientMove => (&["node", "address"], false),
        DropTickles => (&["node"], true),
        Isolate => (&["node", "address"], true),
        Admin => (&["node", "command", "ban_time"], true),
        Stop | Pause => (&["node"], true),
        Crash => (&["node", "address"], true),
        PowerCut => (&["node"], true),
        Hold => (
            &["node", "peer", "port", "network", "direction", "release"],
            true,
        ),
        Message => (
            &["node", "peer", "message", "action", "delay", "release"],
            true,
        ),
        Restart => (&["node"], false),
        Random => (&["kinds", "among", "choose"], true),
    }
}

pub fn kind_name(kind: FaultKind) -> &'static str {
    use FaultKind::*;
    match kind {
        Reset => "reset",
        Blackhole => "blackhole",
        Partition => "partition",
        Impair => "impair",
        Kill => "kill",
        Stop => "stop",
        Pause => "pause",
        Restart => "restart",
        Crash => "crash",
        PowerCut => "power_cut",
        Moveip => "moveip",
        ClientMove => "client_move",
        DropTickles => "drop_tickles",
        Admin => "admin",
        Isolate => "isolate",
        Hold => "hold",
        Message => "message",
        Random => "random",
    }
}

/// The optional keys present in a fault, with where they are.
fn present(f: &Fault) -> Vec<(&'static str, (usize, usize))> {
    fn at<T>(v: &Option<Spanned<T>>) -> Option<(usize, usize)> {
        v.as_ref().map(|s| (s.line(), s.column()))
    }
    [
        ("node", at(&f.node)),
        ("peer", at(&f.peer)),
        ("port", at(&f.port)),
        ("side", at(&f.side)),
        ("network", at(&f.network)),
        ("serving", at(&f.serving)),
        ("process", at(&f.process)),
        ("address", at(&f.address)),
        ("command", at(&f.command)),
        ("ban_time", at(&f.ban_time)),
        ("groups", at(&f.groups)),
        ("from", at(&f.from)),
        ("to", at(&f.to)),
        ("choose", at(&f.choose)),
        ("among", at(&f.among)),
        ("kinds", at(&f.kinds)),
        ("direction", at(&f.direction)),
        ("latency", at(&f.latency)),
        ("jitter", at(&f.jitter)),
        ("distribution", at(&f.distribution)),
        ("loss", at(&f.loss)),
        ("loss_correlation", at(&f.loss_correlation)),
        ("duplicate", at(&f.duplicate)),
        ("reorder", at(&f.reorder)),
        ("reorder_gap", at(&f.reorder_gap)),
        ("corrupt", at(&f.corrupt)),
        ("rate", at(&f.rate)),
        ("message", at(&f.message)),
        ("action", at(&f.action)),
        ("delay", at(&f.delay)),
        ("release", at(&f.release)),
        ("for", at(&f.hold)),
        ("every", at(&f.every)),
        ("count", at(&f.count)),
    ]
    .into_iter()
    .filter_map(|(k, loc)| loc.map(|l| (k, l)))
    .collect()
}

pub(crate) fn check(plan: &Plan, servers: &[&str], clients: &[&str], problems: &mut Vec<Problem>) {
    let mut all: Vec<&str> = Vec::new();
    for n in servers.iter().chain(clients) {
        if !all.contains(n) {
            all.push(n);
        }
    }
    let nodes_are = || {
        if all.is_empty() {
            "the plan has no nodes".to_string()
        } else {
            format!("nodes are: {}", all.join(", "))
        }
    };
    let mut node_ref = |n: &Spanned<String>, problems: &mut Vec<Problem>| -> bool {
        let ok = all.contains(&n.as_str());
        if !ok {
            problems.push(Problem::at(
                n,
                format!("unknown node `{}`; {}", n.value, nodes_are()),
            ));
        }
        ok
    };
    for fault in &plan.faults {
        let kind = *fault.kind;
        let name = kind_name(kind);
        let (keys, takes_for) = keys_of(kind);
        for (key, (line, column)) in present(fault) {
            let fits = keys.contains(&key) || COMMON.contains(&key) || (key == "for" && takes_for);
            if !fits {
                let mut allowed: Vec<&str> = COMMON.iter().chain(keys).copied().collect();
                if takes_for {
                    allowed.push("for");
                }
                let why = match key {
                    "for" => format!(
                        "a `{name}` fault is instantaneous and has no heal, so it takes no `for`"
                    ),
                    _ => format!(
                        "`{key}` does not apply to a `{name}` fault; it takes: {}",
                        allowed.join(", ")
                    ),
                };
                problems.push(Problem::new(line, column, why));
            }
        }
        let need_node = !matches!(kind, FaultKind::Partition | FaultKind::Random);
        let server_only = matches!(
            kind,
            FaultKind::Kill
                | FaultKind::Stop
                | FaultKind::Restart
                | FaultKind::Crash
                | FaultKind::PowerCut
                | FaultKind::Reset
                | FaultKind::Moveip
                | FaultKind::ClientMove
                | FaultKind::Admin
                | FaultKind::Isolate
                | FaultKind::Message
        );
        let names_cluster = |n: &Spanned<String>| {
            plan.topology
                .clusters
                .iter()
                .any(|c| c.name.value == n.value)
        };
        match &fault.node {
            // moveip to a cluster: to the node after the one holding the address.
            Some(node) if kind == FaultKind::Moveip && names_cluster(node) => {}
            // node_ref first: it reports an unknown node whatever the kind.
            Some(node)
                if node_ref(node, problems) && !servers.contains(&node.as_str()) && server_only =>
            {
                problems.push(Problem::at(
                    node,
                    format!(
                        "a `{name}` fault acts on a server, and `{}` is a client",
                        node.value
                    ),
                ));
            }
            Some(_) => {}
            None if need_node
                && !(matches!(kind, FaultKind::Crash | FaultKind::Isolate)
                    && fault.address.is_some()) =>
            {
                problems.push(Problem::at(
                    &fault.kind,
                    format!("a `{name}` fault needs `node`"),
                ))
            }
            None => {}
        }
        if let (FaultKind::PowerCut, Some(node)) = (kind, &fault.node) {
            let lossy = plan.topology.servers.iter().any(|s| {
                s.name.value == node.value
                    && s.shares
                        .iter()
                        .any(|sh| sh.disk == crate::model::Disk::Lossy)
            });
            if servers.contains(&node.as_str()) && !lossy {
                problems.push(Problem::at(
                    node,
                    format!(
                        "a `power_cut` loses what was not synced on `disk: lossy` shares, and `{}` has none; add `disk: lossy` to a share (or use `crash`)",
                        node.value
                    ),
                ));
            }
        }
        for list in [&fault.from, &fault.to, &fault.among].into_iter().flatten() {
            for n in &list.value {
                node_ref(n, problems);
            }
        }
        for single in [&fault.peer, &fault.serving].into_iter().flatten() {
            node_ref(single, problems);
        }
        if let Some(serving) = &fault.serving {
            if servers.contains(&serving.as_str()) {
                problems.push(Problem::at(
                    serving,
                    format!(
                        "`serving` names a client, and `{}` is a server",
                        serving.value
                    ),
                ));
            }
        }
        let needs_wire = matches!(
            kind,
            FaultKind::Blackhole
                | FaultKind::Partition
                | FaultKind::Impair
                | FaultKind::Crash
                | FaultKind::DropTickles
                | FaultKind::Isolate
                | FaultKind::Hold
                | FaultKind::Message
        ) || (kind == FaultKind::Random
            && fault.kinds.as_ref().is_some_and(|k| {
                k.value.iter().any(|k| {
                    matches!(
                        k,
                        FaultKind::Blackhole | FaultKind::Partition | FaultKind::Crash
                    )
                })
            }));
        if needs_wire && plan.topology.wire == crate::model::WireKind::Kernel {
            problems.push(Problem::at(
                &fault.kind,
                format!("a `{name}` fault acts on the userspace wire; remove `wire: kernel` from the topology"),
            ));
        }
        if kind == FaultKind::Partition {
            check_partition(fault, &mut node_ref, problems);
        }
        if kind == FaultKind::Impair {
            check_impair(fault, problems);
        }
        if kind == FaultKind::Random {
            check_random(fault, problems);
        }
        if kind == FaultKind::Message {
            check_message(plan, fault, problems);
        }
        if let (FaultKind::Message, Some(peer)) = (kind, &fault.peer) {
            if servers.contains(&peer.as_str()) {
                problems.push(Problem::at(
                    peer,
                    format!(
                        "a `message` fault's `peer` is a client, and `{}` is a server",
                        peer.value
                    ),
                ));
            }
        }
        if let Some(hold) = &fault.hold {
            if hold.is_zero() {
                problems.push(Problem::at(hold, "`for` must be longer than 0s"));
            }
        }
        match (&fault.every, &fault.count) {
            (Some(every), None) => problems.push(Problem::at(
                every,
                "`every` needs `count`: how many times to repeat",
            )),
            (None, Some(count)) if count.value > 1 => problems.push(Problem::at(
                count,
                "`count` needs `every`: how long between repeats",
            )),
            (Some(every), Some(_)) => {
                if every.is_zero() {
                    problems.push(Problem::at(every, "`every` must be longer than 0s"));
                } else if let Some(hold) = &fault.hold {
                    if hold.value.as_duration() >= every.value.as_duration() {
                        problems.push(Problem::at(
                            hold,
                            format!("`for` ({}) must be shorter than `every` ({}) so repeats do not overlap", hold.value, every.value),
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(count) = &fault.count {
            if count.value == 0 {
                problems.push(Problem::at(count, "`count` must be at least 1"));
            }
        }
    }
    if problems.is_empty() {
        check_overlaps(plan, problems);
    }
}

fn check_partition(
    fault: &Fault,
    node_ref: &mut impl FnMut(&Spanned<String>, &mut Vec<Problem>) -> bool,
    problems: &mut Vec<Problem>,
) {
    let forms = [
        fault.groups.is_some(),
        fault.from.is_some() || fault.to.is_some(),
        fault.node.is_some(),
        fault.choose.is_some(),
    ];
    let n = forms.iter().filter(|f| **f).count();
    if n != 1 {
        problems.push(Problem::at(
            &fault.kind,
            "a `partition` takes exactly one of: `groups`, `from` with `to`, `node` (isolate it), or `choose`",
        ));
    }
    if fault.from.is_some() != fault.to.is_some() {
        problems.push(Problem::at(
            &fault.kind,
            "a one-way `partition` needs both `from` and `to`",
        ));
    }
    if let Some(groups) = &fault.groups {
        if groups.value.len() < 2 {
            problems.push(Problem::at(groups, "`groups` needs at least two groups"));
        }
        let mut seen: Vec<&str> = Vec::new();
        for n in groups.value.iter().flatten() {
            if node_ref(n, problems) && seen.contains(&n.as_str()) {
                problems.push(Problem::at(
                    n,
                    format!("`{}` is in more than one group", n.value),
                ));
            }
            seen.push(n);
        }
    }
}

fn check_impair(fault: &Fault, problems: &mut Vec<Problem>) {
    let percents = [
        ("loss", &fault.loss),
        ("loss_correlation", &fault.loss_correlation),
        ("duplicate", &fault.duplicate),
        ("reorder", &fault.reorder),
        ("corrupt", &fault.corrupt),
    ];
    for (key, value) in percents {
        if let Some(p) = value {
            if !(0.0..=100.0).contains(&p.value.0) {
                let side = if p.value.0 > 100.0 {
                    "above 100%"
                } else {
                    "below 0%"
                };
                problems.push(Problem::at(p, format!("`{key}` of {} is {side}", p.value)));
            }
        }
    }
    let anything = fault.latency.is_some()
        || fault.jitter.is_some()
        || fault.rate.is_some()
        || percents
            .iter()
            .any(|(k, v)| *k != "loss_correlation" && v.is_some());
    if !anything {
        problems.push(Problem::at(
            &fault.kind,
            "an `impair` fault needs at least one of: latency, jitter, loss, duplicate, reorder, corrupt, rate",
        ));
    }
    if let (Some(jitter), None) = (&fault.jitter, &fault.latency) {
        problems.push(Problem::at(jitter, "`jitter` needs `latency`"));
    }
}

/// NTSTATUS names a `message` fault's `status` may use (or any value as `0x` hex).
const STATUSES: &[(&str, u32)] = &[
    ("STATUS_SUCCESS", 0),
    ("STATUS_PENDING", 0x0000_0103),
    ("STATUS_NOTIFY_ENUM_DIR", 0x0000_010c),
    ("STATUS_BUFFER_OVERFLOW", 0x8000_0005),
    ("STATUS_NO_MORE_FILES", 0x8000_0006),
    ("STATUS_UNSUCCESSFUL", 0xc000_0001),
    ("STATUS_INVALID_PARAMETER", 0xc000_000d),
    ("STATUS_END_OF_FILE", 0xc000_0011),
    ("STATUS_MORE_PROCESSING_REQUIRED", 0xc000_0016),
    ("STATUS_ACCESS_DENIED", 0xc000_0022),
    ("STATUS_OBJECT_NAME_NOT_FOUND", 0xc000_0034),
    ("STATUS_OBJECT_NAME_COLLISION", 0xc000_0035),
    ("STATUS_SHARING_VIOLATION", 0xc000_0043),
    ("STATUS_FILE_LOCK_CONFLICT", 0xc000_0054),
    ("STATUS_LOCK_NOT_GRANTED", 0xc000_0055),
    ("STATUS_INSUFFICIENT_RESOURCES", 0xc000_009a),
    ("STATUS_IO_TIMEOUT", 0xc000_00b5),
    ("STATUS_FILE_CLOSED", 0xc000_0128),
    ("STATUS_CANCELLED", 0xc000_0120),
    ("STATUS_NETWORK_NAME_DELETED", 0xc000_00c9),
    ("STATUS_USER_SESSION_DELETED", 0xc000_0203),
    ("STATUS_NETWORK_SESSION_EXPIRED", 0xc000_035c),
    ("STATUS_FILE_NOT_AVAILABLE", 0xc000_0467),
];

/// A `status:` as a plan writes it: a name from STATUSES (any case) or `0x` hex.
pub fn parse_status(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    STATUSES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
}

/// The smb.conf options in force for `node`'s shares (its `global`, then each share's).
fn smb_conf_of<'a>(plan: &'a Plan, node: &str) -> Vec<(&'a String, &'a String)> {
    let mut out = Vec::new();
    for s in plan
        .topology
        .servers
        .iter()
        .filter(|s| s.name.value == node)
    {
        out.extend(s.global.iter());
        out.extend(s.shares.iter().flat_map(|sh| sh.options.iter()));
    }
    for c in &plan.topology.clusters {
        if c.node_names().iter().any(|n| n == node) {
            out.extend(c.global.iter());
            out.extend(c.shares.iter().flat_map(|sh| sh.options.iter()));
        }
    }
    out
}

fn check_message(plan: &Plan, fault: &Fault, problems: &mut Vec<Problem>) {
    let Some(m) = &fault.message else {
        problems.push(Problem::at(
            &fault.kind,
            "a `message` fault needs `message` (e.g. `{ command: write, sent_by: server }`)",
        ));
        return;
    };
    let Some(action) = &fault.action else {
        problems.push(Problem::at(
            &fault.kind,
            "a `message` fault needs `action`: hold, delay, drop or reset",
        ));
        return;
    };
    if let Some(status) = &m.value.status {
        if m.value.sent_by == crate::model::SentBy::Client {
            problems.push(Problem::at(
                status,
                "`status` matches responses: add `sent_by: server` (requests carry no status)",
            ));
        }
        if parse_status(&status.value).is_none() {
            problems.push(Problem::at(
                status,
                format!(
                    "unknown status `{}`: give it as hex (`0xC0000034`) or one of {}",
                    status.value,
                    STATUSES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if let Some(nth) = &m.value.nth {
        if nth.value == 0 {
            problems.push(Problem::at(nth, "`nth` counts from 1"));
        }
    }
    use crate::model::MessageFaultAction as A;
    match (action.value, &fault.delay) {
        (A::Delay, None) => problems.push(Problem::at(action, "`action: delay` needs `delay`")),
        (A::Delay, Some(d)) if d.is_zero() => {
            problems.push(Problem::at(d, "`delay` must be longer than 0s"))
        }
        (A::Delay, Some(_)) | (_, None) => {}
        (_, Some(d)) => problems.push(Problem::at(d, "`delay` applies only to `action: delay`")),
    }
    if let (false, Some(r)) = (action.value == A::Hold, &fault.release) {
        problems.push(Problem::at(r, "`release` applies only to `action: hold`"));
    }
    // Nothing inside an encrypted session can be matched: refuse a server that requires it.
    if let Some(node) = &fault.node {
        for (k, v) in smb_conf_of(plan, &node.value) {
            let key = k
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            let value = v.trim().to_lowercase();
            if (key == "smb encrypt" || key == "server smb encrypt")
                && matches!(value.as_str(), "required" | "mandatory" | "force")
            {
                problems.push(Problem::at(
                    &fault.kind,
                    format!(
                        "a `message` fault reads SMB2 headers on the wire, and `{}` sets `{k} = {v}`: every message of its sessions is encrypted (transform header 0xFD 'S' 'M' 'B'), so none can be matched; use `hold`, `blackhole` or `impair`, or drop the option",
                        node.value
                    ),
                ));
            }
        }
    }
}

fn check_random(fault: &Fault, problems: &mut Vec<Problem>) {
    match &fault.kinds {
        None => problems.push(Problem::at(&fault.kind, "a `random` fault needs `kinds`")),
        Some(kinds) if kinds.value.is_empty() => {
            problems.push(Problem::at(kinds, "`kinds` is empty"))
        }
        Some(kinds) => {
            for k in &kinds.value {
                if matches!(
                    k,
                    FaultKind::Impair
                        | FaultKind::Random
                        | FaultKind::Moveip
                        | FaultKind::ClientMove
                        | FaultKind::DropTickles
                        | FaultKind::Admin
                        | FaultKind::Isolate
                        | FaultKind::Hold
                        | FaultKind::Message
                ) {
                    problems.push(Problem::at(
                        kinds,
                        format!("`{}` cannot be drawn at random (it needs its own settings); list it as a fault of its own", kind_name(*k)),
                    ));
                }
            }
        }
    }
    if fault.hold.is_none() || fault.every.is_none() {
        problems.push(Problem::at(
            &fault.kind,
            "a `random` fault needs `for`, `every` and `count`",
        ));
    }
}

/// What a fault occupies: a node's processes, or one direction of a node's link.
#[derive(PartialEq, Eq, Clone, Debug)]
enum Resource {
    Processes(String),
    /// Node, network (None: every link of the node), direction.
    Link(String, Option<String>, &'static str),
}

impl Resource {
    /// Two links overlap when they are the same, or one of them is every link of the node.
    fn overlaps(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Link(a, na, da), Resource::Link(b, nb, db)) => {
                a == b && da == db && (na.is_none() || nb.is_none() || na == nb)
            }
            _ => self == other,
        }
    }
}

fn resources(action: &Action) -> Vec<Resource> {
    use crate::model::LinkDirection::*;
    match action {
        Action::Kill { node, .. }
        | Action::Stop { node }
        | Action::Pause { node }
        | Action::Restart { node } => {
            vec![Resource::Processes(node.clone())]
        }
        Action::Crash { node, .. } | Action::PowerCut { node } => {
            vec![Resource::Processes(node.clone())]
        }
        Action::Admin { node, .. } => vec![Resource::Processes(node.clone())],
        Action::Moveip { .. }
        | Action::ClientMove { .. }
        | Action::DropTickles { .. }
        | Action::Isolate { .. } => Vec::new(),
        // Holds and message rules compose: each queues or rewrites what it matches.
        Action::Hold { .. } | Action::Message { .. } => Vec::new(),
        Action::Impair {
            node,
            direction,
            network,
            ..
        } => {
            let link = |d| Resource::Link(node.clone(), network.clone(), d);
            match direction {
                Egress => vec![link("egress")],
                Ingress => vec![link("ingress")],
                Both => vec![link("egress"), link("ingress")],
            }
        }
        // Drops compose (a frame dropped twice is dropped once); resets are instantaneous.
        Action::Reset { .. } | Action::Blackhole { .. } | Action::Partition { .. } => Vec::new(),
    }
}

/// Two faults that hold the same node's processes, or the same direction of a link, at the
/// same time contradict each other (what would healing one of them mean?).
fn check_overlaps(plan: &Plan, problems: &mut Vec<Problem>) {
    let occurrences = schedule::schedule(plan);
    let end = |s: &schedule::Scheduled| match (s.action.heals(), s.hold) {
        (false, _) => s.at + Duration::from_nanos(1),
        (true, Some(h)) => s.at + h,
        (true, None) => Duration::MAX,
    };
    for (i, a) in occurrences.iter().enumerate() {
        for b in occurrences.iter().skip(i + 1) {
            if a.fault == b.fault && a.occurrence == b.occurrence {
                continue;
            }
            let overlap = a.at < end(b) && b.at < end(a);
            let shared = resources(&a.action)
                .into_iter()
                .find(|r| resources(&b.action).iter().any(|o| o.overlaps(r)));
            if let (true, Some(resource)) = (overlap, shared) {
                let what = match resource {
                    Resource::Processes(n) => format!("the processes of `{n}`"),
                    Resource::Link(n, None, d) => format!("the {d} of `{n}`'s link"),
                    Resource::Link(n, Some(net), d) => {
                        format!("the {d} of `{n}`'s link to `{net}`")
                    }
                };
                let first = &plan.faults[a.fault];
                problems.push(Problem::at(
                    &plan.faults[b.fault].at,
                    format!(
                        "this `{}` fault overlaps the `{}` fault at line {}: both act on {what} at {:?}",
                        b.action.kind(),
                        a.action.kind(),
                        first.at.line(),
                        b.at.max(a.at)
                    ),
                ));
                return;
            }
        }
    }
}
