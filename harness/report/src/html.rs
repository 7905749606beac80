//! The page: verdict, charts, faults with stall and recovery, evidence, records, files.
//! Everything is inline (CSS, script, SVG): the file opens anywhere, fetches nothing.
//! Markup is built with maud, so every value is escaped unless it is marked pre-escaped
//! (only the page's own CSS and script are).

use history::effect::Effect;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::model::{End, FaultWindow, Model, NONE};
use super::svg::Featured;
use super::{human, secs, svg, Input};
use check::compact::{Rec, NONE as NO_SYM};
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

/// What the page draws from: the model, which records get a row, and those records in full.
struct Page<'a> {
    input: &'a Input,
    m: &'a Model,
    shown: &'a [bool],
    /// (position, record), by position.
    rows: &'a [(u32, Record)],
}

impl Page<'_> {
    fn rec(&self, pos: u32) -> &Rec {
        &self.input.history.recs[pos as usize]
    }

    /// The anchor of a record that has a row.
    fn anchor(&self, pos: u32) -> Option<u64> {
        self.shown
            .get(pos as usize)
            .is_some_and(|s| *s)
            .then(|| self.rec(pos).index)
    }

    fn full(&self, pos: u32) -> Option<&Record> {
        self.rows
            .binary_search_by_key(&pos, |(p, _)| *p)
            .ok()
            .map(|i| &self.rows[i].1)
    }

    fn name(&self, sym: u32) -> &str {
        self.input.history.name(sym)
    }
}

fn featured(m: &Model) -> Featured {
    Featured {
        fail: m.spread(|e| e == End::Fail, FEATURED_FAIL, svg::PLOT),
        unknown: m.spread(
            |e| matches!(e, End::Info | End::Pending),
            FEATURED_UNKNOWN,
            svg::PLOT,
        ),
    }
}

pub fn page(input: &Input, m: &Model, shown: &[bool], rows: &[(u32, Record)]) -> Markup {
    let p = Page {
        input,
        m,
        shown,
        rows,
    };
    let featured = featured(m);
    let anchor = |pos: u32| p.anchor(pos);
    let title = format!("{} — smbchaos", input.plan_name);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (header(&p))
                (checkers(input))
                section #charts {
                    h2 { "Timeline" }
                    p.legend {
                        span.sw.ok {} "ok " span.sw.fail {} "fail " span.sw.info {} "info (unknown) "
                        span.sw.pending {} "never completed " span.sw.fw {} "fault window"
                    }
                    (svg::timeline(m, &input.history, &anchor, &featured))
                    h2 { "Latency" }
                    @if m.ops.len() > svg::DETAIL_OPS {
                        p.legend {
                            span.sw.lp50 {} "median of ok ops per column " span.sw.lmax {} "slowest ok op "
                            span.sw.fail {} "failing " span.sw.info {}
                            "unknown ops (each, or where too many the first in each column)"
                        }
                    }
                    (svg::latency(m, &input.history, &anchor, &featured))
                    h2 { "Throughput" }
                    (svg::throughput(m))
                }
                (faults(&p))
                (evidence(&p))
                (record_table(&p))
                (files(input))
                footer { "smbchaos " (env!("CARGO_PKG_VERSION")) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn label(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Unknown => "UNKNOWN",
    }
}

fn header(p: &Page) -> Markup {
    let (input, m) = (p.input, p.m);
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
    let lab = input
        .status
        .as_ref()
        .map(|s| s.run_id.as_str())
        .filter(|id| !id.is_empty());
    let env: Vec<(&str, String)> = match &input.environment {
        Some(env) => ["samba", "provider", "kernel", "seed"]
            .into_iter()
            .filter_map(|key| env.get(key).map(|v| (key, plain(v))))
            .collect(),
        None => Vec::new(),
    };
    let why = input
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_else(|| "the run was interrupted".into());
    let c = m.counts;
    html! {
        header {
            h1 { (input.plan_name) }
            div #verdict class={ "verdict " (class) } { (text) }
            p.run {
                (input.run_name)
                @if let Some(id) = lab { " · lab " (id) }
                @for (key, v) in &env { " · " (key) " " (v) }
            }
            @if !complete {
                p.banner {
                    "This run did not complete: " (why) ". The history may end early; ops still open at its end are drawn as never completed."
                }
            }
            p.stats {
                (input.history.recs.len()) " records · " (m.ops.len()) " ops: "
                b.t-ok { (c.ok) " ok" } " · " b.t-fail { (c.fail) " fail" } " · "
                b.t-info { (c.info) " info" } " · " (c.pending) " never completed · "
                (m.faults.len()) " faults · " (human(m.t1 - m.t0)) " from first to last record"
            }
        }
    }
}

fn checkers(input: &Input) -> Markup {
    html! {
        section #checkers {
            h2 { "Checkers" }
            @if let Some(verdict) = &input.verdict {
                table {
                    thead { tr { th { "checker" } th { "valid" } th { "expected" } th { "outcome" } th { "explanation" } } }
                    tbody {
                        @for j in &verdict.checkers {
                            tr class={ "o-" (label(j.outcome).to_lowercase()) } {
                                td { a href={ "#ev-" (j.result.checker) } { (j.result.checker) } }
                                td { (match j.result.valid {
                                    Validity::True => "true",
                                    Validity::False => "false",
                                    Validity::Unknown => "unknown",
                                }) }
                                td { (j.expected) }
                                td { (label(j.outcome)) }
                                td {
                                    (j.result.explanation)
                                    // What the checker needed exercised, and whether it was.
                                    @for p in &j.result.preconditions {
                                        br;
                                        small {
                                            "needs " (p.what) ": "
                                            (match p.held {
                                                Validity::True => "held",
                                                Validity::False => "refused by the server",
                                                Validity::Unknown => "unknown",
                                            })
                                            " (" (p.detail) ")"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } @else {
                p { "No verdict.json: the run ended before its history was checked." }
            }
        }
    }
}

/// What a fault did: the effects its completed steps recorded, summed and worded as the
/// terminal words them (`history::effect`), read from its records in full; else whether it
/// landed, as `check` read it.
fn effect(p: &Page, f: &FaultWindow) -> String {
    let mut total: Option<Effect> = None;
    for r in f.records.iter().filter_map(|&pos| p.full(pos)) {
        let recorded = (r.kind == OpType::Ok)
            .then(|| r.value.fault())
            .flatten()
            .and_then(|step| step.detail.as_ref()?.effect.as_ref());
        if let Some(e) = recorded {
            total.get_or_insert_with(Effect::default).add(e);
        }
    }
    match (total, f.landed) {
        (Some(e), _) => e.summary(),
        (None, Some(false)) => "no effect".into(),
        (None, Some(true)) => "landed".into(),
        (None, None) => "not recorded".into(),
    }
}

fn faults(p: &Page) -> Markup {
    let m = p.m;
    html! {
        section #faults {
            h2 { "Faults" }
            @if m.faults.is_empty() {
                p { "No faults in this run." }
            } @else {
                p { "Stall: from the fault's start to the client's last failed or unknown op before it recovered. Recovery: from the fault's start to the client's first ok op completed after the heal." }
                table {
                    thead { tr {
                        @for h in ["fault", "kind", "node", "start", "heal", "held", "effect", "client", "failed/info ops", "stall", "recovery", "after heal"] {
                            th { (h) }
                        }
                    } }
                    tbody {
                        @for f in m.faults.iter().take(FAULT_ROWS) { (fault_rows(p, f)) }
                    }
                }
                @if m.faults.len() > FAULT_ROWS {
                    p { "… and " (m.faults.len() - FAULT_ROWS) " more faults (see history.jsonl)." }
                }
            }
        }
    }
}

fn fault_rows(p: &Page, f: &FaultWindow) -> Markup {
    let m = p.m;
    let mut impacts = m.impacts(f);
    impacts.sort_by(|a, b| m.clients[a.client as usize].cmp(&m.clients[b.client as usize]));
    let rows = impacts.len().max(1);
    let anchor = f.records.first().and_then(|&pos| p.anchor(pos));
    let heal = match (f.healed, f.open) {
        (_, true) => "not healed".to_string(),
        (Some(h), _) => secs(h),
        (None, _) => "one-shot".to_string(),
    };
    let effect = effect(p, f);
    let heal_at = f.healed.unwrap_or(f.end);
    let after_heal = |r: Option<u64>| {
        r.map(|r| human((f.start + r).saturating_sub(heal_at)))
            .unwrap_or_else(|| "—".into())
    };
    html! {
        tr class=[f.failed.is_some().then_some("o-fail")] {
            td rowspan=(rows) {
                @if let Some(i) = anchor { a href={ "#r" (i) } { (f.id) } } @else { (f.id) }
            }
            td rowspan=(rows) { (f.f) }
            td rowspan=(rows) { (f.node.as_deref().unwrap_or("")) }
            td rowspan=(rows) { (secs(f.start)) }
            td rowspan=(rows) {
                (heal)
                @if let Some(s) = &f.failed { " (failed: " (s) ")" }
            }
            td rowspan=(rows) { (human(f.end - f.start)) }
            td rowspan=(rows) class=[(effect == "no effect").then_some("o-fail")] { (effect) }
            @match impacts.first() {
                None => td colspan="5" { "no client ops during or after it" },
                Some(imp) => (impact_cells(m, imp, &after_heal(imp.recovery))),
            }
        }
        @for imp in impacts.iter().skip(1) {
            tr { (impact_cells(m, imp, &after_heal(imp.recovery))) }
        }
    }
}

fn impact_cells(m: &Model, imp: &super::model::Impact, after_heal: &str) -> Markup {
    html! {
        td { (m.clients[imp.client as usize]) }
        td { (imp.bad_ops) }
        td { (imp.stall.map(human).unwrap_or_else(|| "none".into())) }
        td { (imp.recovery.map(human).unwrap_or_else(|| "did not recover".into())) }
        td { (after_heal) }
    }
}

/// For each checker that did not pass, the ops that prove it, linked to their records.
fn evidence(p: &Page) -> Markup {
    let Some(verdict) = &p.input.verdict else {
        return html! {};
    };
    let failing: Vec<_> = verdict
        .checkers
        .iter()
        .filter(|j| j.outcome != Outcome::Pass)
        .collect();
    if failing.is_empty() {
        return html! {};
    }
    html! {
        section #evidence {
            h2 { "Evidence" }
            @for j in failing {
                h3 id={ "ev-" (j.result.checker) } {
                    (j.result.checker) ": " (label(j.outcome)) " (expected " (j.expected) ")"
                }
                p { (j.result.explanation) }
                @if j.result.ops.is_empty() {
                    p { "The checker cites no ops." }
                } @else {
                    div.scroll { table.records {
                        thead { tr {
                            @for h in ["#", "time", "process", "type", "f", "node", "status"] { th { (h) } }
                        } }
                        tbody {
                            @for &index in j.result.ops.iter().take(CITED_PER_CHECKER) {
                                @match p.input.position(index) {
                                    None => tr { td { (index) } td colspan="6" { "not in the history" } },
                                    Some(pos) => (cited_row(p, index, pos)),
                                }
                            }
                        }
                    } }
                    @if j.result.ops.len() > CITED_PER_CHECKER {
                        p { "… and " (j.result.ops.len() - CITED_PER_CHECKER) " more cited ops (see verdict.json)." }
                    }
                }
            }
        }
    }
}

fn cited_row(p: &Page, index: u64, pos: u32) -> Markup {
    let r = p.rec(pos);
    let kind = kind_name(r.kind);
    html! {
        tr class={ "k-" (kind) } {
            td {
                @if let Some(i) = p.anchor(pos) { a href={ "#r" (i) } { (i) } } @else { (index) }
            }
            td { (secs(r.time)) }
            td { (p.input.history.process_name(r)) }
            td { (kind) }
            td { (p.input.history.f_name(r)) }
            td { (p.name(r.node)) }
            td { (clip(p.name(r.status))) }
        }
    }
}

/// Which records get a row (and an anchor): all of a small history; of a big one the cited
/// ops, the faults and the failing ops, each with its invoke or completion.
pub fn chosen_records(input: &Input, m: &Model) -> Vec<bool> {
    let n = input.history.recs.len();
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
    let featured = featured(m);
    for &i in featured.fail.iter().chain(&featured.unknown) {
        mark(m.ops[i].last());
    }
    shown
}

fn record_table(p: &Page) -> Markup {
    let total = p.input.history.recs.len();
    let count = p.shown.iter().filter(|s| **s).count();
    // Rows in history order, with a gap row where records are left out.
    let mut rows: Vec<(usize, u32)> = Vec::with_capacity(count);
    let mut next = 0usize;
    for (pos, _) in p.shown.iter().enumerate().filter(|(_, s)| **s) {
        rows.push((pos - next, pos as u32));
        next = pos + 1;
    }
    let tail = total - next;
    html! {
        section #records {
            h2 { "Records" }
            p {
                @if count == total {
                    "All " (count) " records of history.jsonl."
                } @else {
                    (count) " of " (total) " records: those the checkers cite, the faults, and the failing and unknown ops drawn above, each with its invoke or completion. The rest are in history.jsonl."
                }
                " " label { "Filter " input #filter type="search" placeholder="text in a row"; }
            }
            table.records #record-table {
                thead { tr {
                    @for h in ["#", "time", "process", "type", "f", "node", "status", "op", "fields"] { th { (h) } }
                } }
                tbody {
                    @for &(skipped, pos) in &rows {
                        @if skipped > 0 { (gap(skipped)) }
                        (row(p, pos))
                    }
                    @if tail > 0 { (gap(tail)) }
                }
            }
        }
    }
}

fn gap(skipped: usize) -> Markup {
    html! { tr.gap { td colspan="9" { "… " (skipped) " records not shown …" } } }
}

/// One record, rendered generically: the fields every record has get columns, and every
/// other field (of the record and of its `value`) is listed as name = value, so fields added
/// to the history later show up without a change here.
fn row(p: &Page, pos: u32) -> Markup {
    let r = p.rec(pos);
    let partner = p.m.partner[pos as usize];
    let kind = kind_name(r.kind);
    let fields = p.full(pos).map(fields).unwrap_or_default();
    html! {
        tr id={ "r" (r.index) } class={ "k-" (kind) } {
            td { a href={ "#r" (r.index) } { (r.index) } }
            td { (secs(r.time)) }
            td { (p.input.history.process_name(r)) }
            td { (kind) }
            td { (p.input.history.f_name(r)) }
            td { (p.name(r.node)) }
            td { @if r.status != NO_SYM { (clip(p.name(r.status))) } }
            td {
                @if partner != NONE {
                    @let other = p.rec(partner);
                    (if r.kind == OpType::Invoke { "→" } else { "←" }) " "
                    @if p.anchor(partner).is_some() {
                        a href={ "#r" (other.index) } { (other.index) }
                    } @else { (other.index) }
                    " " (human(r.time.abs_diff(other.time)))
                }
            }
            td {
                @for (k, v) in &fields {
                    span.fld { i { (k) } " " (clip(v)) }
                }
            }
        }
    }
}

/// A record's fields besides the columns, the record's own and then its `value`'s.
fn fields(r: &Record) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Value::Object(mut obj)) = serde_json::to_value(r) {
        for k in ["index", "time_ns", "process", "type", "f", "node", "status"] {
            obj.remove(k);
        }
        let value = obj.remove("value");
        for (k, v) in obj {
            out.push((k, plain(&v)));
        }
        match value {
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    out.push((k, plain(&v)));
                }
            }
            Some(v) if !v.is_null() => out.push(("value".into(), plain(&v))),
            _ => {}
        }
    }
    out
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

fn kind_name(k: OpType) -> &'static str {
    match k {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    }
}

fn files(input: &Input) -> Markup {
    let captures: Vec<_> = input.files.iter().filter(|f| f.capture).collect();
    let environment = input
        .environment
        .as_ref()
        .map(|env| serde_json::to_string_pretty(env).unwrap_or_default());
    html! {
        section #files {
            h2 { "Files" }
            @if captures.is_empty() {
                p { "No packet captures in this run." }
            } @else {
                h3 { "Packet captures" }
                ul { @for f in captures { li { a href=(f.href()) { (f.path) } " (" (f.size) " bytes)" } } }
            }
            h3 { "Run data" }
            ul {
                @for f in input.files.iter().filter(|f| !f.capture) {
                    li { a href=(f.href()) { (f.path) } " (" (f.size) " bytes)" }
                }
            }
            @if let Some(plan) = &input.plan_text {
                details { summary { "plan.yaml" } pre { (plan) } }
            }
            @if let Some(text) = &environment {
                details { summary { "environment.json" } pre { (text) } }
            }
        }
    }
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
