//! Seed 004's two measurements, read from the history alone:
//!
//! - `network-bytes`: the share of one node's bytes that its link to one network carried
//!   while the workload ran, from the wire's `link_counters` records (process `wire`, one
//!   every 500 ms, keyed `<node>.<network>`): the last sample minus the first, egress plus
//!   ingress, of that link over all of the node's links.
//! - `probe-latency`: how much slower a probe's ops get while a load runs. The probe is every
//!   workload op of the clients on one node, the load every op of the clients on another;
//!   the load's window runs from the invoke of its first op to the completion of its last.
//!   The slowdown is the median latency (invoke to `ok`) of the probe's ops invoked in the
//!   window over the median of those invoked before it.
//!
//! Both need what they measure to have happened (samples with traffic on the node; probe ops
//! before and during the load): without it they are unknown, not passing.

use std::collections::BTreeMap;

use history::{OpType, Process, Record};

use crate::{Anomaly, Checked, Findings, Validity};

pub const NETWORK_BYTES: &str = "network-bytes";
pub const PROBE_LATENCY: &str = "probe-latency";
/// The sampler's record name.
const LINK_COUNTERS: &str = "link_counters";
/// At least this many probe ops on each side of the comparison.
const MIN_PROBES: usize = 3;

/// One bound: the share of `node`'s bytes on `network`, as fractions 0.0..=1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareBound {
    pub node: String,
    pub network: String,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOptions {
    pub probe: String,
    pub load: String,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

/// Bytes (egress + ingress) per `<node>.<network>` link between the first and last sample,
/// and the history indexes of those two samples.
pub fn bytes_per_link(history: &[Record]) -> Option<(BTreeMap<String, u64>, [u64; 2])> {
    let samples: Vec<&Record> = history
        .iter()
        .filter(|r| r.f == LINK_COUNTERS && r.process.name() == Some("wire"))
        .collect();
    let (first, last) = (samples.first()?, samples.last()?);
    let totals = |r: &Record| -> BTreeMap<String, u64> {
        let history::Value::Observation(serde_json::Value::Object(links)) = &r.value else {
            return BTreeMap::new();
        };
        links
            .iter()
            .map(|(k, v)| {
                let n = |f: &str| v.get(f).and_then(|x| x.as_u64()).unwrap_or(0);
                (k.clone(), n("egress_bytes") + n("ingress_bytes"))
            })
            .collect()
    };
    let (a, b) = (totals(first), totals(last));
    let delta = b
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*a.get(k).unwrap_or(&0))))
        .collect();
    Some((delta, [first.index, last.index]))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// `network-bytes` against every bound.
pub fn network_bytes(history: &[Record], bounds: &[ShareBound]) -> Checked {
    let mut f = Findings::default();
    let Some((links, cite)) = bytes_per_link(history) else {
        f.precondition(
            "link counters sampled",
            Validity::Unknown,
            &[],
            "the history has no link_counters records (not the userspace wire?)".into(),
        );
        return f.finish(NETWORK_BYTES, "no samples".into());
    };
    let mut per_node: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (k, v) in &links {
        if let Some((node, net)) = k.split_once('.') {
            per_node.entry(node).or_default().push((net, *v));
        }
    }
    for (node, nets) in &per_node {
        let parts: Vec<String> = nets
            .iter()
            .map(|(n, b)| format!("{n} {}", mib(*b)))
            .collect();
        f.note(format!("{node}: {}", parts.join(", ")));
    }
    for b in bounds {
        let nets = per_node.get(b.node.as_str()).cloned().unwrap_or_default();
        let total: u64 = nets.iter().map(|(_, v)| v).sum();
        let on = nets
            .iter()
            .find(|(n, _)| *n == b.network)
            .map(|(_, v)| *v)
            .unwrap_or(0);
        let what = format!("{}'s bytes on {}", b.node, b.network);
        if total == 0 {
            f.precondition(
                &format!("traffic on {}'s links", b.node),
                Validity::Unknown,
                &cite,
                format!("{} carried no bytes while the workload ran", b.node),
            );
            continue;
        }
        let share = on as f64 / total as f64;
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        if let Some(min) = b.at_least {
            if share < min {
                f.violation(Anomaly::NetworkShare, &cite, || {
                    format!(
                        "{what}: {} of {} ({}), expected at least {}",
                        mib(on),
                        mib(total),
                        pct(share),
                        pct(min)
                    )
                });
            }
        }
        if let Some(max) = b.at_most {
            if share > max {
                f.violation(Anomaly::NetworkShare, &cite, || {
                    format!(
                        "{what}: {} of {} ({}), expected at most {}",
                        mib(on),
                        mib(total),
                        pct(share),
                        pct(max)
                    )
                });
            }
        }
        f.note(format!("{what}: {}", pct(share)));
    }
    f.finish(NETWORK_BYTES, format!("{} bound(s)", bounds.len()))
}

/// One completed op: invoke index and time, completion time and kind.
struct Done {
    invoke: u64,
    start: u64,
    end: u64,
    kind: OpType,
}

/// Every completed workload op (worker processes) of `node`'s clients.
fn ops_of(history: &[Record], node: &str) -> Vec<Done> {
    let mut open: BTreeMap<u64, (u64, u64, &str)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in history {
        let Process::Worker(p) = r.process else {
            continue;
        };
        if r.node.as_deref() != Some(node) {
            continue;
        }
        match r.kind {
            OpType::Invoke => {
                open.insert(p, (r.index, r.time_ns, r.f.as_str()));
            }
            kind => {
                if let Some((invoke, start, f)) = open.remove(&p) {
                    if f == r.f {
                        out.push(Done {
                            invoke,
                            start,
                            end: r.time_ns,
                            kind,
                        });
                    }
                }
            }
        }
    }
    out
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// `probe-latency` against its bounds.
pub fn probe_latency(history: &[Record], o: &ProbeOptions) -> Checked {
    let mut f = Findings::default();
    let load = ops_of(history, &o.load);
    let (Some(from), Some(to)) = (
        load.iter().map(|d| d.start).min(),
        load.iter().map(|d| d.end).max(),
    ) else {
        f.precondition(
            "the load ran",
            Validity::Unknown,
            &[],
            format!("no completed op of {}'s clients", o.load),
        );
        return f.finish(PROBE_LATENCY, "no load".into());
    };
    let probe: Vec<Done> = ops_of(history, &o.probe)
        .into_iter()
        .filter(|d| d.kind == OpType::Ok)
        .collect();
    let before: Vec<&Done> = probe.iter().filter(|d| d.start < from).collect();
    let during: Vec<&Done> = probe
        .iter()
        .filter(|d| d.start >= from && d.start <= to)
        .collect();
    let ms = |ns: u64| format!("{:.1} ms", ns as f64 / 1e6);
    for (what, side) in [("before the load", &before), ("during the load", &during)] {
        let held = if side.len() >= MIN_PROBES {
            Validity::True
        } else {
            Validity::Unknown
        };
        f.precondition(
            &format!("probe ops {what}"),
            held,
            &[],
            format!(
                "{} ok op(s) of {}'s clients (at least {MIN_PROBES} needed)",
                side.len(),
                o.probe
            ),
        );
    }
    if before.len() < MIN_PROBES || during.len() < MIN_PROBES {
        return f.finish(PROBE_LATENCY, "too few probe ops to compare".into());
    }
    let base = median(before.iter().map(|d| d.end - d.start).collect()).max(1);
    let load_med = median(during.iter().map(|d| d.end - d.start).collect());
    let slowdown = load_med as f64 / base as f64;
    // Cite the slowest probe ops under the load.
    let mut slow: Vec<&&Done> = during.iter().collect();
    slow.sort_by_key(|d| std::cmp::Reverse(d.end - d.start));
    let cite: Vec<u64> = slow.iter().take(5).map(|d| d.invoke).collect();
    let summary = format!(
        "{}'s median latency {} before {}'s load ({} ops), {} during it ({} ops, {:.1} s): {slowdown:.1}x",
        o.probe,
        ms(base),
        o.load,
        before.len(),
        ms(load_med),
        during.len(),
        (to - from) as f64 / 1e9
    );
    if let Some(min) = o.at_least {
        if slowdown < min {
            f.violation(Anomaly::ProbeLatency, &cite, || {
                format!(
                    "the probe slowed down {slowdown:.1}x under the load, expected at least {min}x"
                )
            });
        }
    }
    if let Some(max) = o.at_most {
        if slowdown > max {
            f.violation(Anomaly::ProbeLatency, &cite, || {
                format!(
                    "the probe slowed down {slowdown:.1}x under the load, expected at most {max}x"
                )
            });
        }
    }
    f.finish(PROBE_LATENCY, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::Value;

    fn sample(index: u64, links: serde_json::Value) -> Record {
        Record {
            index,
            time_ns: index * 1_000_000,
            process: Process::Named("wire".into()),
            kind: OpType::Info,
            f: LINK_COUNTERS.into(),
            value: Value::Observation(links),
            ..Record::default()
        }
    }

    fn op(index: u64, p: u64, node: &str, kind: OpType, ms: u64) -> Record {
        Record {
            index,
            time_ns: ms * 1_000_000,
            process: Process::Worker(p),
            kind,
            f: "write".into(),
            node: Some(node.into()),
            ..Record::default()
        }
    }

    #[test]
    fn shares_come_from_the_first_and_last_sample() {
        let h = [
            sample(
                0,
                serde_json::json!({"c1.storage": {"egress_bytes": 100, "ingress_bytes": 0}, "c1.mgmt": {"egress_bytes": 50, "ingress_bytes": 50}}),
            ),
            sample(
                1,
                serde_json::json!({"c1.storage": {"egress_bytes": 700, "ingress_bytes": 100}, "c1.mgmt": {"egress_bytes": 250, "ingress_bytes": 50}}),
            ),
        ];
        let bound = |at_least, at_most| ShareBound {
            node: "c1".into(),
            network: "mgmt".into(),
            at_least,
            at_most,
        };
        // storage 700, mgmt 200: mgmt 22 %.
        let ok = network_bytes(&h, &[bound(Some(0.2), Some(0.25))]);
        assert_eq!(ok.result.valid, Validity::True, "{:?}", ok.result);
        let low = network_bytes(&h, &[bound(None, Some(0.01))]);
        assert_eq!(low.result.valid, Validity::False);
        assert_eq!(low.anomalies, [Anomaly::NetworkShare]);
        assert_eq!(low.result.ops, [0, 1]);
        assert!(
            low.result.explanation.contains("22.2%"),
            "{}",
            low.result.explanation
        );
        let none = network_bytes(&h[..0], &[bound(Some(0.2), None)]);
        assert_eq!(none.result.valid, Validity::Unknown);
    }

    #[test]
    fn the_probe_is_compared_before_and_during_the_load() {
        let mut h = Vec::new();
        let mut i = 0;
        let mut push = |p, node: &str, from, to| {
            h.push(op(i, p, node, OpType::Invoke, from));
            h.push(op(i + 1, p, node, OpType::Ok, to));
            i += 2;
        };
        for t in 0..5 {
            push(0, "admin", t * 10, t * 10 + 2); // 2 ms before
        }
        push(1, "c1", 100, 200);
        push(1, "c1", 200, 400);
        for t in 0..5 {
            push(0, "admin", 110 + t * 40, 110 + t * 40 + 30); // 30 ms during
        }
        let o = |at_least, at_most| ProbeOptions {
            probe: "admin".into(),
            load: "c1".into(),
            at_least,
            at_most,
        };
        let r = probe_latency(&h, &o(Some(10.0), None));
        assert_eq!(r.result.valid, Validity::True, "{:?}", r.result);
        assert!(
            r.result.explanation.contains("15.0x"),
            "{}",
            r.result.explanation
        );
        let r = probe_latency(&h, &o(None, Some(3.0)));
        assert_eq!(r.result.valid, Validity::False);
        assert_eq!(r.result.ops.len(), 5);
        // No baseline (the load from the start): unknown, not a pass.
        let r = probe_latency(&h[10..], &o(None, Some(3.0)));
        assert_eq!(r.result.valid, Validity::Unknown, "{:?}", r.result);
    }
}
