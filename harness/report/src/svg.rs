//! Hand-written SVG: the ops timeline, latency and throughput, all on one time axis so the
//! fault windows line up. A screen shows about a thousand columns, so big histories are
//! drawn per column (the worst outcome in a column wins: a failing op never disappears),
//! and small ones op by op.

use std::fmt::Write;

use super::model::{End, FaultWindow, Model};
use super::{esc, human, secs};
use history::Record;

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

fn open_svg(out: &mut String, class: &str, height: f64, axis: &Axis, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart {class}" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {height}" data-t0="{}" data-t1="{}" data-left="{LEFT}" data-plot="{PLOT}">"#,
        axis.t0, axis.t1
    );
}

/// Vertical grid lines with time labels along the bottom.
fn time_axis(out: &mut String, axis: &Axis, top: f64, bottom: f64) {
    for (t, label) in axis.ticks() {
        let x = axis.x(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            bottom + 14.0
        );
    }
}

fn fault_shading(out: &mut String, axis: &Axis, faults: &[FaultWindow], top: f64, bottom: f64) {
    for f in faults {
        let (x0, x1) = (axis.x(f.start), axis.x(f.end));
        let _ = write!(
            out,
            r#"<rect class="fw{}" x="{x0:.1}" y="{top}" width="{:.1}" height="{:.1}"><title>fault {}: {} {} {}–{}</title></rect>"#,
            if f.failed.is_some() { " fwbad" } else { "" },
            (x1 - x0).max(1.0),
            bottom - top,
            esc(&f.id),
            esc(&f.f),
            esc(f.node.as_deref().unwrap_or("")),
            secs(f.start),
            if f.open {
                "(not healed)".to_string()
            } else {
                secs(f.end)
            },
        );
    }
}

/// What a mark links to: the anchor of a record shown in the page's record table.
pub type Anchor<'a> = &'a dyn Fn(u32) -> Option<u64>;

pub fn timeline(
    out: &mut String,
    m: &Model,
    records: &[Record],
    anchor: Anchor,
    featured: &Featured,
) {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let (fault_row, fault_rows) = stack(&m.faults);
    // Rows 0..fault_rows are the nemesis's; op lane i is row fault_rows + i.
    let lanes = m.lanes.len() + fault_rows;
    let top = 4.0;
    let bottom = top + lanes as f64 * LANE;
    open_svg(
        out,
        "timeline",
        bottom + AXIS,
        &axis,
        "ops timeline per process with fault windows",
    );
    fault_shading(out, &axis, &m.faults, top, bottom);
    time_axis(out, &axis, top, bottom);
    let lane_y = |lane: usize| top + lane as f64 * LANE;
    let _ = write!(
        out,
        r#"<text class="lane" x="{}" y="{:.1}">nemesis</text>"#,
        LEFT - 6.0,
        lane_y(0) + BAR
    );
    for (i, name) in m.lanes.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text class="lane" x="{}" y="{:.1}">{}</text>"#,
            LEFT - 6.0,
            lane_y(i + fault_rows) + BAR,
            esc(name)
        );
    }
    for (f, &row) in m.faults.iter().zip(&fault_row) {
        let (x0, x1) = (axis.x(f.start), axis.x(f.end));
        let _ = write!(
            out,
            r#"<rect class="fault" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{BAR}"><title>fault {}: {} {}</title></rect>"#,
            lane_y(row) + 1.0,
            (x1 - x0).max(2.0),
            esc(&f.id),
            esc(&f.f),
            esc(f.node.as_deref().unwrap_or("")),
        );
        if x1 - x0 > 40.0 {
            let _ = write!(
                out,
                r#"<text class="flabel" x="{:.1}" y="{:.1}">{}</text>"#,
                x0 + 3.0,
                lane_y(row) + BAR - 2.0,
                esc(&f.f)
            );
        }
    }
    if m.ops.len() <= DETAIL_OPS {
        for op in &m.ops {
            let (x0, x1) = (axis.x(op.start), axis.x(op.end_ns.unwrap_or(m.t1)));
            let y = lane_y(op.lane as usize + fault_rows) + 1.0;
            let pos = op.done.or(op.invoke).expect("an op has a record");
            let r = &records[pos as usize];
            let title = format!(
                "{} {} {}: {}{} ({})",
                r.f,
                r.node.as_deref().unwrap_or(""),
                secs(op.start),
                op.end.class(),
                r.status
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default(),
                op.latency()
                    .map(human)
                    .unwrap_or_else(|| "never completed".into()),
            );
            let rect = format!(
                r#"<rect class="{}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR}"><title>{}</title></rect>"#,
                op.end.class(),
                (x1 - x0).max(1.5),
                esc(&title)
            );
            link(out, anchor(pos), &rect);
        }
    } else {
        let op_y = |lane: usize| lane_y(lane + fault_rows);
        aggregated_lanes(out, m, &axis, op_y);
        failing_marks(out, m, &axis, anchor, &featured.fail, |op| {
            (op_y(op.lane as usize), BAR + 2.0)
        });
    }
    cursor(out, top, bottom);
    out.push_str("</svg>");
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

fn link(out: &mut String, anchor: Option<u64>, inner: &str) {
    match anchor {
        Some(index) => {
            let _ = write!(out, r##"<a href="#r{index}">{inner}</a>"##);
        }
        None => out.push_str(inner),
    }
}

/// Per lane and column, the ops in flight there, drawn as runs of one colour: fail if any
/// failed (a failure never disappears), info if at least a tenth are unknown, else ok; a
/// column with fewer unknown ops gets a thin amber tick under its bar instead.
fn aggregated_lanes(out: &mut String, m: &Model, axis: &Axis, lane_y: impl Fn(usize) -> f64) {
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
    for (c, class) in ["ok", "info", "fail", "info"].iter().enumerate() {
        if !paths[c].is_empty() {
            let _ = write!(out, r#"<path class="{class}" d="{}"/>"#, paths[c]);
        }
    }
}

/// Each featured failing op as its own mark linking to its record.
fn failing_marks(
    out: &mut String,
    m: &Model,
    axis: &Axis,
    anchor: Anchor,
    which: &[usize],
    place: impl Fn(&super::model::Op) -> (f64, f64),
) {
    for op in which.iter().map(|&i| &m.ops[i]) {
        let (y, h) = place(op);
        let x = axis.x(op.end_ns.unwrap_or(op.start));
        let pos = op.done.or(op.invoke).expect("an op has a record");
        let mark = format!(
            r#"<rect class="mark" x="{:.1}" y="{y:.1}" width="2" height="{h:.0}"/>"#,
            x - 1.0
        );
        link(out, anchor(pos), &mark);
    }
}

/// The crosshair the page script moves; invisible without script.
fn cursor(out: &mut String, top: f64, bottom: f64) {
    let _ = write!(
        out,
        r#"<g class="cursor"><line x1="0" y1="{top}" x2="0" y2="{bottom}"/><text x="0" y="{:.1}"></text></g>"#,
        top + 10.0
    );
}

/// Latency of each op against its invoke time, log scale. Small histories: a dot per op.
/// Big ones: per column the median and the maximum of ok ops, and the featured failing and
/// unknown ops' dots.
pub fn latency(
    out: &mut String,
    m: &Model,
    records: &[Record],
    anchor: Anchor,
    featured: &Featured,
) {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let top = 8.0;
    let bottom = top + CHART;
    open_svg(
        out,
        "latency",
        bottom + AXIS,
        &axis,
        "op latency over time, log scale",
    );
    fault_shading(out, &axis, &m.faults, top, bottom);
    time_axis(out, &axis, top, bottom);
    let lats = m.ops.iter().filter_map(|op| op.latency());
    let (lo, hi) = lats.fold((u64::MAX, 0), |(lo, hi), l| {
        (lo.min(l.max(1_000)), hi.max(l))
    });
    if hi == 0 {
        let _ = write!(
            out,
            r#"<text class="empty" x="{}" y="{}">no completed ops</text>"#,
            LEFT + 10.0,
            top + 20.0
        );
        out.push_str("</svg>");
        return;
    }
    let (lo_exp, hi_exp) = (
        (lo as f64).log10().floor(),
        (hi as f64)
            .log10()
            .ceil()
            .max((lo as f64).log10().floor() + 1.0),
    );
    let y = |ns: u64| bottom - ((ns.max(1) as f64).log10() - lo_exp) / (hi_exp - lo_exp) * CHART;
    for e in lo_exp as i32..=hi_exp as i32 {
        let ns = 10u64.pow(e as u32);
        let yy = y(ns);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT + PLOT as f64,
            LEFT - 6.0,
            yy + 4.0,
            human(ns)
        );
    }
    if m.ops.len() <= DETAIL_OPS {
        for op in &m.ops {
            let Some(l) = op.latency() else { continue };
            let pos = op.done.expect("completed");
            let r = &records[pos as usize];
            let dot = format!(
                r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="3"><title>{} {} {}: {} in {}</title></circle>"#,
                op.end.class(),
                axis.x(op.start),
                y(l),
                esc(&r.f),
                esc(r.node.as_deref().unwrap_or("")),
                secs(op.start),
                op.end.class(),
                human(l)
            );
            link(out, anchor(pos), &dot);
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
        let _ = write!(
            out,
            r#"<path class="lmax" d="{max}"/><path class="lp50" d="{median}"/>"#
        );
        for &i in featured.unknown.iter().chain(&featured.fail) {
            let op = &m.ops[i];
            let Some(l) = op.latency() else { continue };
            let pos = op.done.expect("completed");
            let dot = format!(
                r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="2.5"/>"#,
                op.end.class(),
                axis.x(op.start),
                y(l)
            );
            link(out, anchor(pos), &dot);
        }
    }
    cursor(out, top, bottom);
    out.push_str("</svg>");
}

/// Completions per second, by outcome, in up to 200 buckets.
pub fn throughput(out: &mut String, m: &Model) {
    let axis = Axis { t0: m.t0, t1: m.t1 };
    let top = 8.0;
    let bottom = top + CHART;
    open_svg(
        out,
        "throughput",
        bottom + AXIS,
        &axis,
        "completed ops per second over time",
    );
    fault_shading(out, &axis, &m.faults, top, bottom);
    time_axis(out, &axis, top, bottom);
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
    for i in 0..=4 {
        let r = ymax * i as f64 / 4.0;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{} /s</text>"#,
            LEFT + PLOT as f64,
            LEFT - 6.0,
            y(r) + 4.0,
            short_number(r),
            yy = y(r),
        );
    }
    let step = PLOT as f64 / BUCKETS as f64;
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
        let _ = write!(out, r#"<path class="rate {class}" d="{d}"/>"#);
    }
    cursor(out, top, bottom);
    out.push_str("</svg>");
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
