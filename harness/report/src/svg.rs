//! Hand-written SVG: the ops timeline, latency and throughput, all on one time axis so the
//! fault windows line up. A screen shows about a thousand columns, so big histories are
//! drawn per column (the worst outcome in a column wins: a failing op never disappears),
//! and small ones op by op.

use std::fmt::Write;

use maud::{html, Markup, Render};

use super::model::{End, FaultWindow, Model, Op};
use super::{human, secs};
use check::History;

/// Left margin for lane labels, and the plot width in columns (user units).
pub const LEFT: f64 = 140.0;
pub const PLOT: usize = 1000;
const WIDTH: f64 = LEFT + PLOT as f64 + 12.0;
const LANE: f64 = 16.0;
const BAR: f64 = 12.0;
const AXIS: f64 = 22.0;
const CHART: f64 = 150.0;
/// Up to this many ops, each op is drawn (and titled) on its own.
pub const DETAIL_OPS: usize = 2000;

/// The failing and unknown ops drawn one by one (and linked) in a big history: all of them,
/// or where there are too many, the first in each column. The rest still colour their
/// columns.
pub struct Featured {
    pub fail: Vec<usize>,
    pub unknown: Vec<usize>,
}

pub struct Axis {
    pub t0: u64,
    pub t1: u64,
}

impl Axis {
    fn span(&self) -> f64 {
        (self.t1 - self.t0).max(1) as f64
    }

    pub fn x(&self, t: u64) -> f64 {
        LEFT + t.saturating_sub(self.t0) as f64 / self.span() * PLOT as f64
    }

    pub fn col(&self, t: u64) -> usize {
        ((t.saturating_sub(self.t0) as f64 / self.span() * PLOT as f64) as usize).min(PLOT - 1)
    }

    /// Round tick steps (1, 2, 5 × 10^k ns), at most about ten of them.
    fn ticks(&self) -> Vec<(u64, String)> {
        let span = self.t1 - self.t0;
        let mut step = 1u64;
        'find: loop {
            for m in [1, 2, 5] {
                if span / (step * m) <= 10 {
                    step *= m;
                    break 'find;
                }
            }
            step *= 10;
        }
        let decimals = match step {
            s if s >= 1_000_000_000 => 0,
            s if s >= 100_000_000 => 1,
            s if s >= 10_000_000 => 2,
            _ => 3,
        };
        let first = self.t0.div_ceil(step) * step;
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.t1)
            .map(|t| (t, format!("{:.*} s", decimals, t as f64 / 1e9)))
            .collect()
    }
}

/// A coordinate in user units, one decimal.
struct N(f64);

impl Render for N {
    fn render_to(&self, buffer: &mut String) {
        let _ = write!(buffer, "{:.1}", self.0);
    }
}

/// An `<svg>` chart on the shared time axis; the page script reads its `data-*`.
fn chart(class: &str, height: f64, axis: &Axis, label: &str, inner: Markup) -> Markup {
    html! {
        svg class={ "chart " (class) } role="img" aria-label=(label)
            viewBox={ "0 0 " (WIDTH) " " (height) } data-t0=(axis.t0) data-t1=(axis.t1)
            data-left=(LEFT) data-plot=(PLOT) { (inner) }
    }
}

/// Vertical grid lines with time labels along the bottom.
fn time_axis(axis: &Axis, top: f64, bottom: f64) -> Markup {
    html! {
        @for (t, label) in axis.ticks() {
            @let x = N(axis.x(t));
            line.grid x1=(x) y1=(top) x2=(x) y2=(bottom) {}
            text.tick x=(x) y=(N(bottom + 14.0)) text-anchor="middle" { (label) }
        }
    }
}

fn fault_shading(axis: &Axis, faults: &[FaultWindow], top: f64, bottom: f64) -> Markup {
    html! {
        @for f in faults {
            @let (x0, x1) = (axis.x(f.start), axis.x(f.end));
            rect class={ "fw" @if f.failed.is_some() { " fwbad" } } x=(N(x0)) y=(top)
                width=(N((x1 - x0).max(1.0))) height=(N(bottom - top)) {
                title {
                    "fault " (f.id) ": " (f.f) " " (f.node.as_deref().unwrap_or("")) " "
                    (secs(f.start)) "–" @if f.open { "(not healed)" } @else { (secs(f.end)) }
                }
            }
        }
    }
}

/// What a mark links to: the anchor of a record shown in the page's record table.
pub type Anchor<'a> = &'a dyn Fn(u32) -> Option<u64>;

fn link(anchor: Option<u64>, inner: Markup) -> Markup {
    html! {
        @if let Some(index) = anchor { a href={ "#r" (index) } { (inner) } } @else { (inner) }
    }
}

pub fn timeline(m: &Model, h: &History, anchor: Anchor, featured: &Featured) -> Markup {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let (fault_row, fault_rows) = stack(&m.faults);
    // Rows 0..fault_rows are the nemesis's; op lane i is row fault_rows + i.
    let lanes = m.lanes.len() + fault_rows;
    let top = 4.0;
    let bottom = top + lanes as f64 * LANE;
    let lane_y = |lane: usize| top + lane as f64 * LANE;
    let op_y = |lane: usize| lane_y(lane + fault_rows);
    let inner = html! {
        (fault_shading(&axis, &m.faults, top, bottom))
        (time_axis(&axis, top, bottom))
        text.lane x=(LEFT - 6.0) y=(N(lane_y(0) + BAR)) { "nemesis" }
        @for (i, name) in m.lanes.iter().enumerate() {
            text.lane x=(LEFT - 6.0) y=(N(op_y(i) + BAR)) { (name) }
        }
        @for (f, &row) in m.faults.iter().zip(&fault_row) {
            @let (x0, x1) = (axis.x(f.start), axis.x(f.end));
            rect.fault x=(N(x0)) y=(N(lane_y(row) + 1.0)) width=(N((x1 - x0).max(2.0))) height=(BAR) {
                title { "fault " (f.id) ": " (f.f) " " (f.node.as_deref().unwrap_or("")) }
            }
            @if x1 - x0 > 40.0 {
                text.flabel x=(N(x0 + 3.0)) y=(N(lane_y(row) + BAR - 2.0)) { (f.f) }
            }
        }
        @if m.ops.len() <= DETAIL_OPS {
            @for op in &m.ops {
                (link(anchor(op.last()), op_bar(&axis, m, h, op, op_y(op.lane as usize) + 1.0)))
            }
        } @else {
            (aggregated_lanes(m, &axis, op_y))
            (failing_marks(m, &axis, anchor, &featured.fail, |op| (op_y(op.lane as usize), BAR + 2.0)))
        }
        (cursor(top, bottom))
    };
    chart(
        "timeline",
        bottom + AXIS,
        &axis,
        "ops timeline per process with fault windows",
        inner,
    )
}

/// One op of a small history: a bar from invoke to completion, titled.
fn op_bar(axis: &Axis, m: &Model, h: &History, op: &Op, y: f64) -> Markup {
    let (x0, x1) = (axis.x(op.start), axis.x(op.end_ns.unwrap_or(m.t1)));
    let r = &h.recs[op.last() as usize];
    let status = h.name(r.status);
    html! {
        rect class=(op.end.class()) x=(N(x0)) y=(N(y)) width=(N((x1 - x0).max(1.5))) height=(BAR) {
            title {
                (h.f_name(r)) " " (h.name(r.node)) " " (secs(op.start)) ": " (op.end.class())
                @if !status.is_empty() { " " (status) }
                " (" (op.latency().map(human).unwrap_or_else(|| "never completed".into())) ")"
            }
        }
    }
}

/// Overlapping faults go on rows of their own (first fit, at most `MAX_FAULT_ROWS`).
/// Returns each fault's row and the number of rows.
fn stack(faults: &[FaultWindow]) -> (Vec<usize>, usize) {
    const MAX_FAULT_ROWS: usize = 6;
    let mut row_end: Vec<u64> = Vec::new();
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by_key(|&i| faults[i].start);
    let mut rows = vec![0; faults.len()];
    for i in order {
        let f = &faults[i];
        let row = match row_end.iter().position(|&end| end < f.start) {
            Some(r) => r,
            None if row_end.len() < MAX_FAULT_ROWS => {
                row_end.push(0);
                row_end.len() - 1
            }
            None => MAX_FAULT_ROWS - 1,
        };
        row_end[row] = row_end[row].max(f.end);
        rows[i] = row;
    }
    (rows, row_end.len().max(1))
}

/// Per lane and column, the ops in flight there, drawn as runs of one colour: fail if any
/// failed (a failure never disappears), info if at least a tenth are unknown, else ok; a
/// column with fewer unknown ops gets a thin amber tick under its bar instead.
fn aggregated_lanes(m: &Model, axis: &Axis, lane_y: impl Fn(usize) -> f64) -> Markup {
    const OK: usize = 0;
    const INFO: usize = 1;
    const FAIL: usize = 2;
    let class_of = |e: End| match e {
        End::Ok => OK,
        End::Info | End::Pending => INFO,
        End::Fail => FAIL,
    };
    let lanes = m.lanes.len();
    // Difference arrays: +1 where an op starts, -1 after its last column.
    let mut diff = vec![0i32; lanes * 3 * (PLOT + 1)];
    for op in &m.ops {
        let base = (op.lane as usize * 3 + class_of(op.end)) * (PLOT + 1);
        diff[base + axis.col(op.start)] += 1;
        diff[base + axis.col(op.end_ns.unwrap_or(m.t1)) + 1] -= 1;
    }
    // Paths per colour, and one for the ticks.
    let mut paths: [String; 4] = Default::default();
    let flush = |paths: &mut [String; 4], c: usize, from: usize, to: usize, y: f64, h: f64| {
        let _ = write!(
            paths[c],
            "M{} {y:.0}h{}v{h}h-{}z",
            LEFT as usize + from,
            to - from,
            to - from
        );
    };
    for lane in 0..lanes {
        let y = lane_y(lane) + 1.0;
        let mut running = [0i32; 3];
        let mut run: Option<(usize, usize)> = None; // (colour, first column)
        let mut tick: Option<usize> = None; // first column of a run of ticks
        for col in 0..=PLOT {
            let (state, ticked) = if col == PLOT {
                (None, false)
            } else {
                for (c, r) in running.iter_mut().enumerate() {
                    *r += diff[(lane * 3 + c) * (PLOT + 1) + col];
                }
                let [ok, info, fail] = running;
                match () {
                    _ if fail > 0 => (Some(FAIL), false),
                    _ if info > 0 && info * 10 >= ok + info => (Some(INFO), false),
                    _ if ok > 0 => (Some(OK), info > 0),
                    _ => (None, false),
                }
            };
            if run.map(|(c, _)| c) != state {
                if let Some((c, from)) = run {
                    flush(&mut paths, c, from, col, y, BAR);
                }
                run = state.map(|c| (c, col));
            }
            match (tick, ticked) {
                (None, true) => tick = Some(col),
                (Some(from), false) => {
                    flush(&mut paths, 3, from, col, y + BAR - 3.0, 3.0);
                    tick = None;
                }
                _ => {}
            }
        }
    }
    html! {
        @for (c, class) in ["ok", "info", "fail", "info"].iter().enumerate() {
            @if !paths[c].is_empty() { path class=(class) d=(paths[c]) {} }
        }
    }
}

/// Each featured failing op as its own mark linking to its record.
fn failing_marks(
    m: &Model,
    axis: &Axis,
    anchor: Anchor,
    which: &[usize],
    place: impl Fn(&Op) -> (f64, f64),
) -> Markup {
    html! {
        @for op in which.iter().map(|&i| &m.ops[i]) {
            @let (y, h) = place(op);
            @let x = axis.x(op.end_ns.unwrap_or(op.start));
            (link(anchor(op.last()), html! {
                rect.mark x=(N(x - 1.0)) y=(N(y)) width="2" height=(h.round()) {}
            }))
        }
    }
}

/// The crosshair the page script moves; invisible without script.
fn cursor(top: f64, bottom: f64) -> Markup {
    html! {
        g.cursor { line x1="0" y1=(top) x2="0" y2=(bottom) {} text x="0" y=(N(top + 10.0)) {} }
    }
}

/// Latency of each op against its invoke time, log scale. Small histories: a dot per op.
/// Big ones: per column the median and the maximum of ok ops, and the featured failing and
/// unknown ops' dots.
pub fn latency(m: &Model, h: &History, anchor: Anchor, featured: &Featured) -> Markup {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let top = 8.0;
    let bottom = top + CHART;
    let label = "op latency over time, log scale";
    let lats = m.ops.iter().filter_map(|op| op.latency());
    let (lo, hi) = lats.fold((u64::MAX, 0), |(lo, hi), l| {
        (lo.min(l.max(1_000)), hi.max(l))
    });
    let frame = html! {
        (fault_shading(&axis, &m.faults, top, bottom))
        (time_axis(&axis, top, bottom))
    };
    if hi == 0 {
        let inner = html! {
            (frame)
            text.empty x=(LEFT + 10.0) y=(top + 20.0) { "no completed ops" }
        };
        return chart("latency", bottom + AXIS, &axis, label, inner);
    }
    let (lo_exp, hi_exp) = (
        (lo as f64).log10().floor(),
        (hi as f64)
            .log10()
            .ceil()
            .max((lo as f64).log10().floor() + 1.0),
    );
    let y = |ns: u64| bottom - ((ns.max(1) as f64).log10() - lo_exp) / (hi_exp - lo_exp) * CHART;
    let grid = html! {
        @for e in lo_exp as i32..=hi_exp as i32 {
            @let ns = 10u64.pow(e as u32);
            @let yy = N(y(ns));
            line.grid x1=(LEFT) y1=(yy) x2=(LEFT + PLOT as f64) y2=(yy) {}
            text.tick x=(LEFT - 6.0) y=(N(y(ns) + 4.0)) text-anchor="end" { (human(ns)) }
        }
    };
    let dots = if m.ops.len() <= DETAIL_OPS {
        html! {
            @for op in &m.ops {
                @if let (Some(l), Some(pos)) = (op.latency(), op.done) {
                    @let r = &h.recs[pos as usize];
                    (link(anchor(pos), html! {
                        circle class=(op.end.class()) cx=(N(axis.x(op.start))) cy=(N(y(l))) r="3" {
                            title {
                                (h.f_name(r)) " " (h.name(r.node)) " " (secs(op.start)) ": "
                                (op.end.class()) " in " (human(l))
                            }
                        }
                    }))
                }
            }
        }
    } else {
        let mut cols: Vec<Vec<u64>> = vec![Vec::new(); PLOT];
        for op in m.ops.iter().filter(|op| op.end == End::Ok) {
            cols[axis.col(op.start)].push(op.latency().unwrap_or(0));
        }
        let (mut median, mut max) = (String::new(), String::new());
        let mut gap = true;
        for (c, v) in cols.iter_mut().enumerate() {
            if v.is_empty() {
                gap = true;
                continue;
            }
            let mid = v.len() / 2;
            let p50 = *v.select_nth_unstable(mid).1;
            let top_l = *v.iter().max().expect("non-empty");
            let cmd = if gap { 'M' } else { 'L' };
            let x = LEFT as usize + c;
            let _ = write!(median, "{cmd}{x} {:.1}", y(p50));
            let _ = write!(max, "{cmd}{x} {:.1}", y(top_l));
            gap = false;
        }
        html! {
            path.lmax d=(max) {}
            path.lp50 d=(median) {}
            @for &i in featured.unknown.iter().chain(&featured.fail) {
                @let op = &m.ops[i];
                @if let (Some(l), Some(pos)) = (op.latency(), op.done) {
                    (link(anchor(pos), html! {
                        circle class=(op.end.class()) cx=(N(axis.x(op.start))) cy=(N(y(l))) r="2.5" {}
                    }))
                }
            }
        }
    };
    let inner = html! { (frame) (grid) (dots) (cursor(top, bottom)) };
    chart("latency", bottom + AXIS, &axis, label, inner)
}

/// Completions per second, by outcome, in up to 200 buckets.
pub fn throughput(m: &Model) -> Markup {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let top = 8.0;
    let bottom = top + CHART;
    const BUCKETS: usize = 200;
    let mut counts = vec![[0u32; 3]; BUCKETS];
    for op in &m.ops {
        let Some(end) = op.end_ns else { continue };
        let b = (axis.col(end) * BUCKETS / PLOT).min(BUCKETS - 1);
        let k = match op.end {
            End::Ok => 0,
            End::Fail => 1,
            _ => 2,
        };
        counts[b][k] += 1;
    }
    let bucket_s = (m.t1 - m.t0) as f64 / 1e9 / BUCKETS as f64;
    let peak = counts
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(0) as f64
        / bucket_s;
    let ymax = nice_ceiling(peak.max(1.0));
    let y = |rate: f64| bottom - rate / ymax * CHART;
    let step = PLOT as f64 / BUCKETS as f64;
    let mut paths: Vec<(&str, String)> = Vec::new();
    for (k, class) in ["ok", "fail", "info"].iter().enumerate() {
        if counts.iter().all(|c| c[k] == 0) {
            continue;
        }
        let mut d = String::new();
        for (b, c) in counts.iter().enumerate() {
            let x = LEFT + b as f64 * step;
            let yy = y(c[k] as f64 / bucket_s);
            let _ = write!(
                d,
                "{}{x:.1} {yy:.1}H{:.1}",
                if b == 0 { 'M' } else { 'L' },
                x + step
            );
        }
        paths.push((class, d));
    }
    let inner = html! {
        (fault_shading(&axis, &m.faults, top, bottom))
        (time_axis(&axis, top, bottom))
        @for i in 0..=4 {
            @let r = ymax * i as f64 / 4.0;
            @let yy = N(y(r));
            line.grid x1=(LEFT) y1=(yy) x2=(LEFT + PLOT as f64) y2=(yy) {}
            text.tick x=(LEFT - 6.0) y=(N(y(r) + 4.0)) text-anchor="end" { (short_number(r)) " /s" }
        }
        @for (class, d) in &paths {
            path class={ "rate " (class) } d=(d) {}
        }
        (cursor(top, bottom))
    };
    chart(
        "throughput",
        bottom + AXIS,
        &axis,
        "completed ops per second over time",
        inner,
    )
}

fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn short_number(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 10.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_within_the_axis() {
        let a = Axis {
            t0: 244_000_000,
            t1: 655_000_000,
        };
        let t: Vec<String> = a.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            t,
            [
                "0.25 s", "0.30 s", "0.35 s", "0.40 s", "0.45 s", "0.50 s", "0.55 s", "0.60 s",
                "0.65 s"
            ]
        );
        let long = Axis {
            t0: 0,
            t1: 3_600_000_000_000,
        };
        assert!(long.ticks().len() <= 11);
        assert_eq!(a.col(a.t1), PLOT - 1);
        assert_eq!(a.x(a.t0), LEFT);
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
    }
}
