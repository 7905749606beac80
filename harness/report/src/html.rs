//! The page: verdict, charts, faults with stall and recovery, evidence, records, files.
//! Everything is inline (CSS, script, SVG): the file opens anywhere, fetches nothing.

use std::fmt::Write;

use serde_json::Value;

use super::model::{End, Model, NONE};
use super::svg::Featured;
use super::{esc, human, secs, svg, Input};
use check::Outcome;
use check::Validity;
use history::{OpType, Record};

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
/// Histories up to this many records are tabled whole.
pub const FULL_TABLE: usize = 3000;
/// Caps for big histories, so the page stays a few MB whatever the run did.
const CITED_PER_CHECKER: usize = 2000;
const NEMESIS_ROWS: usize = 1000;
/// Failing and unknown ops featured (drawn one by one, linked, tabled) in a big history.
const FEATURED_FAIL: usize = 2000;
const FEATURED_UNKNOWN: usize = 1000;
const FAULT_ROWS: usize = 300;
/// Longest string shown in a record cell; the history file has the rest.
const CELL: usize = 160;

pub fn page(input: &Input, m: &Model) -> String {
    let records = &input.records;
    let featured = Featured {
        fail: m.spread(|e| e == End::Fail, FEATURED_FAIL, svg::PLOT),
        unknown: m.spread(
            |e| matches!(e, End::Info | End::Pending),
            FEATURED_UNKNOWN,
            svg::PLOT,
        ),
    };
    let shown = chosen_records(input, m, &featured);
    let anchor = |pos: u32| shown[pos as usize].then(|| records[pos as usize].index);
    let mut out = String::with_capacity(1 << 20);
    let title = format!("{} — smbchaos", input.plan_name);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><style>{CSS}</style></head><body>"#,
        esc(&title)
    );
    header(&mut out, input, m);
    checkers(&mut out, input);
    out.push_str(r#"<section id="charts"><h2>Timeline</h2><p class="legend"><span class="sw ok"></span>ok <span class="sw fail"></span>fail <span class="sw info"></span>info (unknown) <span class="sw pending"></span>never completed <span class="sw fw"></span>fault window</p>"#);
    svg::timeline(&mut out, m, records, &anchor, &featured);
    out.push_str("<h2>Latency</h2>");
    if m.ops.len() > svg::DETAIL_OPS {
        out.push_str(r#"<p class="legend"><span class="sw lp50"></span>median of ok ops per column <span class="sw lmax"></span>slowest ok op <span class="sw fail"></span>failing <span class="sw info"></span>unknown ops (each, or where too many the first in each column)</p>"#);
    }
    svg::latency(&mut out, m, records, &anchor, &featured);
    out.push_str("<h2>Throughput</h2>");
    svg::throughput(&mut out, m);
    out.push_str("</section>");
    faults(&mut out, m, &anchor);
    evidence(&mut out, input, &anchor);
    record_table(&mut out, input, m, &shown);
    files(&mut out, input);
    out.push_str("<footer>smbchaos ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    let _ = write!(out, r#"</footer><script>{SCRIPT}</script></body></html>"#);
    out
}

fn label(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Unknown => "UNKNOWN",
    }
}

fn header(out: &mut String, input: &Input, m: &Model) {
    let complete = input.status.as_ref().is_some_and(|s| s.complete);
    let (class, text) = match (&input.verdict, complete) {
        (Some(v), true) => (
            label(v.outcome).to_lowercase(),
            label(v.outcome).to_string(),
        ),
        (Some(v), false) => (
            "incomplete".into(),
            format!("INCOMPLETE (checked: {})", label(v.outcome)),
        ),
        (None, _) => ("incomplete".into(), "INCOMPLETE — no verdict".into()),
    };
    let _ = write!(
        out,
        r#"<header><h1>{}</h1><div id="verdict" class="verdict {class}">{}</div><p class="run">{}"#,
        esc(&input.plan_name),
        esc(&text),
        esc(&input.run_name)
    );
    if let Some(s) = &input.status {
        if !s.run_id.is_empty() {
            let _ = write!(out, " · lab {}", esc(&s.run_id));
        }
    }
    if let Some(env) = &input.environment {
        for key in ["samba", "kernel", "seed"] {
            if let Some(v) = env.get(key) {
                let _ = write!(out, " · {key} {}", esc(&plain(v)));
            }
        }
    }
    out.push_str("</p>");
    if !complete {
        let why = input
            .status
            .as_ref()
            .and_then(|s| s.error.clone())
            .unwrap_or_else(|| "the run was interrupted".into());
        let _ = write!(
            out,
            r#"<p class="banner">This run did not complete: {}. The history may end early; ops still open at its end are drawn as never completed.</p>"#,
            esc(&why)
        );
    }
    let c = m.counts;
    let _ = write!(
        out,
        r#"<p class="stats">{} records · {} ops: <b class="t-ok">{} ok</b> · <b class="t-fail">{} fail</b> · <b class="t-info">{} info</b> · {} never completed · {} faults · {} from first to last record</p></header>"#,
        input.records.len(),
        m.ops.len(),
        c.ok,
        c.fail,
        c.info,
        c.pending,
        m.faults.len(),
        human(m.t1 - m.t0)
    );
}

fn checkers(out: &mut String, input: &Input) {
    out.push_str(r#"<section id="checkers"><h2>Checkers</h2>"#);
    let Some(verdict) = &input.verdict else {
        out.push_str(
            "<p>No verdict.json: the run ended before its history was checked.</p></section>",
        );
        return;
    };
    out.push_str("<table><thead><tr><th>checker</th><th>valid</th><th>expected</th><th>outcome</th><th>explanation</th></tr></thead><tbody>");
    for j in &verdict.checkers {
        let valid = match j.result.valid {
            Validity::True => "true",
            Validity::False => "false",
            Validity::Unknown => "unknown",
        };
        // What the checker needed exercised, and whether it was.
        let needs: String = j
            .result
            .preconditions
            .iter()
            .map(|p| {
                let held = match p.held {
                    Validity::True => "held",
                    Validity::False => "refused by the server",
                    Validity::Unknown => "unknown",
                };
                format!(
                    "<br><small>needs {}: {held} ({})</small>",
                    esc(&p.what),
                    esc(&p.detail)
                )
            })
            .collect();
        let _ = write!(
            out,
            r##"<tr class="o-{}"><td><a href="#ev-{}">{}</a></td><td>{valid}</td><td>{}</td><td>{}</td><td>{}{needs}</td></tr>"##,
            label(j.outcome).to_lowercase(),
            esc(&j.result.checker),
            esc(&j.result.checker),
            esc(&j.expected),
            label(j.outcome),
            esc(&j.result.explanation)
        );
    }
    out.push_str("</tbody></table></section>");
}

fn faults(out: &mut String, m: &Model, anchor: &dyn Fn(u32) -> Option<u64>) {
    out.push_str(r#"<section id="faults"><h2>Faults</h2>"#);
    if m.faults.is_empty() {
        out.push_str("<p>No faults in this run.</p></section>");
        return;
    }
    out.push_str("<p>Stall: from the fault's start to the client's last failed or unknown op before it recovered. Recovery: from the fault's start to the client's first ok op completed after the heal.</p>");
    out.push_str("<table><thead><tr><th>fault</th><th>kind</th><th>node</th><th>start</th><th>heal</th><th>held</th><th>effect</th><th>client</th><th>failed/info ops</th><th>stall</th><th>recovery</th><th>after heal</th></tr></thead><tbody>");
    for f in m.faults.iter().take(FAULT_ROWS) {
        let mut impacts = m.impacts(f);
        impacts.sort_by(|a, b| m.clients[a.client as usize].cmp(&m.clients[b.client as usize]));
        let rows = impacts.len().max(1);
        let first = f.records.first().copied().unwrap_or(NONE);
        let id = match anchor(first) {
            Some(i) => format!(r##"<a href="#r{i}">{}</a>"##, esc(&f.id)),
            None => esc(&f.id).into_owned(),
        };
        let heal = match (f.healed, f.open) {
            (_, true) => "not healed".to_string(),
            (Some(h), _) => secs(h),
            (None, _) => "one-shot".to_string(),
        };
        let _ = write!(
            out,
            r#"<tr{}><td rowspan="{rows}">{id}</td><td rowspan="{rows}">{}</td><td rowspan="{rows}">{}</td><td rowspan="{rows}">{}</td><td rowspan="{rows}">{heal}{}</td><td rowspan="{rows}">{}</td><td rowspan="{rows}"{}>{}</td>"#,
            if f.failed.is_some() {
                r#" class="o-fail""#
            } else {
                ""
            },
            esc(&f.f),
            esc(f.node.as_deref().unwrap_or("")),
            secs(f.start),
            f.failed
                .as_deref()
                .map(|s| format!(" (failed: {})", esc(s)))
                .unwrap_or_default(),
            human(f.end - f.start),
            if f.effect.as_deref() == Some("no effect") {
                r#" class="o-fail""#
            } else {
                ""
            },
            esc(f.effect.as_deref().unwrap_or("not recorded")),
        );
        if impacts.is_empty() {
            out.push_str(r#"<td colspan="5">no client ops during or after it</td></tr>"#);
        }
        let heal_at = f.healed.unwrap_or(f.end);
        for (i, imp) in impacts.iter().enumerate() {
            if i > 0 {
                out.push_str("<tr>");
            }
            let after_heal = imp
                .recovery
                .map(|r| human((f.start + r).saturating_sub(heal_at)))
                .unwrap_or_else(|| "—".into());
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{after_heal}</td></tr>",
                esc(&m.clients[imp.client as usize]),
                imp.bad_ops,
                imp.stall.map(human).unwrap_or_else(|| "none".into()),
                imp.recovery
                    .map(human)
                    .unwrap_or_else(|| "did not recover".into()),
            );
        }
    }
    out.push_str("</tbody></table>");
    if m.faults.len() > FAULT_ROWS {
        let _ = write!(
            out,
            "<p>… and {} more faults (see history.jsonl).</p>",
            m.faults.len() - FAULT_ROWS
        );
    }
    out.push_str("</section>");
}

/// For each checker that did not pass, the ops that prove it, linked to their records.
fn evidence(out: &mut String, input: &Input, anchor: &dyn Fn(u32) -> Option<u64>) {
    let Some(verdict) = &input.verdict else {
        return;
    };
    let failing: Vec<_> = verdict
        .checkers
        .iter()
        .filter(|j| j.outcome != Outcome::Pass)
        .collect();
    if failing.is_empty() {
        return;
    }
    out.push_str(r#"<section id="evidence"><h2>Evidence</h2>"#);
    for j in failing {
        let _ = write!(
            out,
            r#"<h3 id="ev-{}">{}: {} (expected {})</h3><p>{}</p>"#,
            esc(&j.result.checker),
            esc(&j.result.checker),
            label(j.outcome),
            esc(&j.expected),
            esc(&j.result.explanation)
        );
        if j.result.ops.is_empty() {
            out.push_str("<p>The checker cites no ops.</p>");
            continue;
        }
        out.push_str("<div class=\"scroll\"><table class=\"records\"><thead><tr><th>#</th><th>time</th><th>process</th><th>type</th><th>f</th><th>node</th><th>status</th></tr></thead><tbody>");
        for &index in j.result.ops.iter().take(CITED_PER_CHECKER) {
            let Some(pos) = input.position(index) else {
                let _ = write!(
                    out,
                    r#"<tr><td>{index}</td><td colspan="6">not in the history</td></tr>"#
                );
                continue;
            };
            let r = &input.records[pos as usize];
            let link = match anchor(pos) {
                Some(i) => format!(r##"<a href="#r{i}">{i}</a>"##),
                None => index.to_string(),
            };
            let _ = write!(
                out,
                r#"<tr class="k-{}"><td>{link}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                kind_name(r),
                secs(r.time_ns),
                esc(&process_name(r)),
                kind_name(r),
                esc(&r.f),
                esc(r.node.as_deref().unwrap_or("")),
                esc(&clip(r.status.as_deref().unwrap_or("")))
            );
        }
        out.push_str("</tbody></table></div>");
        if j.result.ops.len() > CITED_PER_CHECKER {
            let _ = write!(
                out,
                "<p>… and {} more cited ops (see verdict.json).</p>",
                j.result.ops.len() - CITED_PER_CHECKER
            );
        }
    }
    out.push_str("</section>");
}

/// Which records get a row (and an anchor): all of a small history; of a big one the cited
/// ops, the faults and the failing ops, each with its invoke or completion.
fn chosen_records(input: &Input, m: &Model, featured: &Featured) -> Vec<bool> {
    let n = input.records.len();
    if n <= FULL_TABLE {
        return vec![true; n];
    }
    let mut shown = vec![false; n];
    let mut mark = |pos: u32| {
        if (pos as usize) < n {
            shown[pos as usize] = true;
            let p = m.partner[pos as usize];
            if p != NONE {
                shown[p as usize] = true;
            }
        }
    };
    if let Some(v) = &input.verdict {
        for j in &v.checkers {
            for &i in j.result.ops.iter().take(CITED_PER_CHECKER) {
                if let Some(pos) = input.position(i) {
                    mark(pos);
                }
            }
        }
    }
    for f in &m.faults {
        for &pos in f.records.iter().take(NEMESIS_ROWS) {
            mark(pos);
        }
    }
    for &i in featured.fail.iter().chain(&featured.unknown) {
        let op = &m.ops[i];
        mark(op.done.or(op.invoke).expect("an op has a record"));
    }
    shown
}

fn record_table(out: &mut String, input: &Input, m: &Model, shown: &[bool]) {
    let count = shown.iter().filter(|s| **s).count();
    let _ = write!(out, r#"<section id="records"><h2>Records</h2><p>"#);
    if count == input.records.len() {
        let _ = write!(out, "All {count} records of history.jsonl.");
    } else {
        let _ = write!(
            out,
            "{count} of {} records: those the checkers cite, the faults, and the failing and unknown ops drawn above, each with its invoke or completion. The rest are in history.jsonl.",
            input.records.len()
        );
    }
    out.push_str(r#" <label>Filter <input id="filter" type="search" placeholder="text in a row"></label></p><table class="records" id="record-table"><thead><tr><th>#</th><th>time</th><th>process</th><th>type</th><th>f</th><th>node</th><th>status</th><th>op</th><th>fields</th></tr></thead><tbody>"#);
    let mut skipped = 0usize;
    for (pos, r) in input.records.iter().enumerate() {
        if !shown[pos] {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            let _ = write!(
                out,
                r#"<tr class="gap"><td colspan="9">… {skipped} records not shown …</td></tr>"#
            );
            skipped = 0;
        }
        row(out, input, m, pos, r, shown);
    }
    if skipped > 0 {
        let _ = write!(
            out,
            r#"<tr class="gap"><td colspan="9">… {skipped} records not shown …</td></tr>"#
        );
    }
    out.push_str("</tbody></table></section>");
}

/// One record, rendered generically: the fields every record has get columns, and every
/// other field (of the record and of its `value`) is listed as name = value, so fields added
/// to the history later show up without a change here.
fn row(out: &mut String, input: &Input, m: &Model, pos: usize, r: &Record, shown: &[bool]) {
    let partner = m.partner[pos];
    let op = if partner == NONE {
        String::new()
    } else {
        let p = &input.records[partner as usize];
        let what = if r.kind == OpType::Invoke {
            "→"
        } else {
            "←"
        };
        let lat = human(r.time_ns.abs_diff(p.time_ns));
        if shown[partner as usize] {
            format!(r##"{what} <a href="#r{}">{}</a> {lat}"##, p.index, p.index)
        } else {
            format!("{what} {} {lat}", p.index)
        }
    };
    let mut fields = String::new();
    if let Ok(Value::Object(mut obj)) = serde_json::to_value(r) {
        for k in ["index", "time_ns", "process", "type", "f", "node", "status"] {
            obj.remove(k);
        }
        let value = obj.remove("value");
        for (k, v) in obj {
            field(&mut fields, &k, &v);
        }
        match value {
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    field(&mut fields, &k, &v);
                }
            }
            Some(v) if !v.is_null() => field(&mut fields, "value", &v),
            _ => {}
        }
    }
    let _ = write!(
        out,
        r##"<tr id="r{i}" class="k-{k}"><td><a href="#r{i}">{i}</a></td><td>{}</td><td>{}</td><td>{k}</td><td>{}</td><td>{}</td><td>{}</td><td>{op}</td><td>{fields}</td></tr>"##,
        secs(r.time_ns),
        esc(&process_name(r)),
        esc(&r.f),
        esc(r.node.as_deref().unwrap_or("")),
        esc(&clip(r.status.as_deref().unwrap_or(""))),
        i = r.index,
        k = kind_name(r),
    );
}

fn field(out: &mut String, name: &str, v: &Value) {
    let text = plain(v);
    let _ = write!(
        out,
        r#"<span class="fld"><i>{}</i> {}</span>"#,
        esc(name),
        esc(&clip(&text))
    );
}

/// A JSON value as a person reads it: strings bare, everything else compact JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn clip(s: &str) -> String {
    if s.len() <= CELL {
        return s.to_string();
    }
    let mut end = CELL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

fn kind_name(r: &Record) -> &'static str {
    match r.kind {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    }
}

fn process_name(r: &Record) -> String {
    match &r.process {
        history::Process::Worker(n) => n.to_string(),
        history::Process::Named(s) => s.clone(),
    }
}

fn files(out: &mut String, input: &Input) {
    out.push_str(r#"<section id="files"><h2>Files</h2>"#);
    let captures: Vec<_> = input.files.iter().filter(|f| f.capture).collect();
    if captures.is_empty() {
        out.push_str("<p>No packet captures in this run.</p>");
    } else {
        out.push_str("<h3>Packet captures</h3><ul>");
        for f in captures {
            let _ = write!(
                out,
                r#"<li><a href="{}">{}</a> ({} bytes)</li>"#,
                esc(&f.href()),
                esc(&f.path),
                f.size
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<h3>Run data</h3><ul>");
    for f in input.files.iter().filter(|f| !f.capture) {
        let _ = write!(
            out,
            r#"<li><a href="{}">{}</a> ({} bytes)</li>"#,
            esc(&f.href()),
            esc(&f.path),
            f.size
        );
    }
    out.push_str("</ul>");
    if let Some(plan) = &input.plan_text {
        let _ = write!(
            out,
            "<details><summary>plan.yaml</summary><pre>{}</pre></details>",
            esc(plan)
        );
    }
    if let Some(env) = &input.environment {
        let text = serde_json::to_string_pretty(env).unwrap_or_default();
        let _ = write!(
            out,
            "<details><summary>environment.json</summary><pre>{}</pre></details>",
            esc(&text)
        );
    }
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_char_boundaries() {
        let s = "é".repeat(200);
        let c = clip(&s);
        assert!(c.ends_with("(400 bytes)"), "{c}");
        assert!(c.len() < 200);
    }
}
