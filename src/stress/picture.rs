//! A picture of a history (`rvlf stress --svg FILE`, `--html FILE`): a
//! timeline of holding intervals, one lane per writer, Jepsen-style, with the
//! faults and deaths marked on it and the checker's first overlap
//! highlighted; and two histograms, of hand-off gaps (one holder's exit to
//! the next one's enter) and of hold times.
//!
//! Self-contained: one SVG with its style inline, no script, no link. The
//! HTML page embeds the same SVG after a summary table. A history of more
//! than [`MAX_DRAWN`] acquisitions draws that many, around the first overlap
//! (or the first ones) and says so; the histograms count every acquisition.
//!
//! Stable hooks for tests and tools: `<svg id="timeline">` (with
//! `data-acquisitions` and `data-drawn`), `<g class="lane" data-writer="N">`,
//! `<rect class="hold" data-writer=.. data-seq=..>` (`class="hold overlap"`
//! for the first overlapping pair), `class="fault ..."` glyphs, and
//! `<svg id="gaps">`, `<svg id="holds">`.

use std::fmt::Write as _;

use super::check::{human_ns, quantile, Findings, Interval};
use super::history::{Kind, Saved};
use super::report;
use crate::html::escape as esc;

/// At most this many acquisitions are drawn on the timeline.
pub const MAX_DRAWN: usize = 5000;
/// At most this many fault glyphs are drawn.
const MAX_GLYPHS: usize = 5000;

const LEFT: f64 = 110.0;
const PLOT: f64 = 1080.0;
const WIDTH: f64 = LEFT + PLOT + 20.0;
const LANE: f64 = 24.0;
const BAR: f64 = 12.0;
const HIST_W: f64 = 595.0;
const HIST_H: f64 = 220.0;
const BINS: usize = 24;

/// One acquisition as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hold {
    writer: u32,
    pid: u32,
    seq: u64,
    /// How many times this writer had died before.
    life: u32,
    start: u64,
    end: Option<u64>,
    died: bool,
}

/// A fault, death or other mark on a lane (or the harness row).
#[derive(Debug, Clone)]
struct Mark {
    t: u64,
    kind: Kind,
    writer: Option<u32>,
    pid: u32,
    cause: Option<String>,
}

/// What the picture is made of, taken from the history in one pass.
#[derive(Debug, Default)]
struct Data {
    holds: Vec<Hold>,
    marks: Vec<Mark>,
    /// From an exit (or a holder's death) to the next enter, when the lock
    /// was free in between.
    gaps: Vec<u64>,
    lanes: u32,
    lives: Vec<u32>,
}

fn gather(saved: &Saved) -> Data {
    let mut d = Data {
        lanes: saved.run.as_ref().map_or(0, |r| r.writers as u32),
        ..Data::default()
    };
    let mut open: std::collections::BTreeMap<u32, usize> = Default::default();
    let mut last_exit: Option<u64> = None;
    for e in &saved.events {
        if let Some(w) = e.writer {
            d.lanes = d.lanes.max(w + 1);
            if d.lives.len() <= w as usize {
                d.lives.resize(w as usize + 1, 0);
            }
        }
        match (e.event, e.writer) {
            (Kind::Enter, Some(w)) => {
                if open.is_empty() {
                    if let Some(x) = last_exit {
                        d.gaps.push(e.t_ns.saturating_sub(x));
                    }
                }
                open.insert(w, d.holds.len());
                d.holds.push(Hold {
                    writer: w,
                    pid: e.pid,
                    seq: e.seq,
                    life: d.lives[w as usize],
                    start: e.t_ns,
                    end: None,
                    died: false,
                });
            }
            (Kind::Exit | Kind::Death, Some(w)) => {
                if let Some(i) = open.remove(&w) {
                    d.holds[i].end = Some(e.t_ns);
                    d.holds[i].died = e.event == Kind::Death;
                    last_exit = Some(e.t_ns);
                }
                if e.event == Kind::Death {
                    d.lives[w as usize] += 1;
                }
            }
            _ => {}
        }
        if !matches!(e.event, Kind::Enter | Kind::Exit) {
            d.marks.push(Mark {
                t: e.t_ns,
                kind: e.event,
                writer: e.writer,
                pid: e.pid,
                cause: e.cause.clone(),
            });
        }
    }
    d
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Enter => "enter",
        Kind::Exit => "exit",
        Kind::Lost => "lost",
        Kind::ReleaseError => "release-error",
        Kind::Death => "death",
        Kind::Pause => "pause",
        Kind::Continue => "continue",
        Kind::Kill => "kill",
        Kind::Plant => "plant",
        Kind::Aged => "aged",
        Kind::Error => "error",
    }
}

/// A glyph's outline, centred on its time.
fn glyph_path(kind: Kind) -> &'static str {
    match kind {
        Kind::Death => "M-4,-4L4,4M-4,4L4,-4",
        Kind::Kill => "M-4,-6L4,-6L0,1Z",
        Kind::Pause => "M-2.5,-5V5M2.5,-5V5",
        Kind::Continue => "M-3,-4L3,0L-3,4Z",
        Kind::Plant => "M0,-5L5,0L0,5L-5,0Z",
        Kind::Aged => "M-3,0A3,3 0 1,0 3,0A3,3 0 1,0 -3,0",
        _ => "M-3,-3H3V3H-3Z",
    }
}

const STYLE: &str = "\
text{font-family:sans-serif;font-size:11px;fill:#222}\
.caption{font-size:12px}\
.overlap-caption{fill:#b00;font-weight:bold}\
.track{fill:#f4f4f4}\
.hold{stroke:none}\
.hold.overlap{fill:#d62728;stroke:#700;stroke-width:1}\
.outline{fill:none;stroke:#d62728;stroke-width:1.5}\
.band{fill:#d62728;fill-opacity:0.15}\
.axis{stroke:#888;stroke-width:1}\
.fault path{stroke-width:1.5}\
.death path{stroke:#000;fill:none}\
.kill path{fill:#b00;stroke:none}\
.pause path{stroke:#7b3fbf;fill:none;stroke-width:2}\
.continue path{fill:#2a8a2a;stroke:none}\
.plant path{fill:#e69500;stroke:none}\
.aged path{fill:none;stroke:#666}\
.lost path,.release-error path,.error path{fill:#e377c2;stroke:none}\
.bin{fill:#4878b0}\
.zero{fill:#999}";

/// The picture of a history, and its page.
pub struct Picture {
    /// A whole SVG document: timeline, then both histograms.
    pub svg: String,
    /// An HTML5 page: a summary table and the same SVG inline.
    pub html: String,
}

/// Draw `saved`, whose findings (from the checker) are `f`; `harness_failed`
/// says the run did not complete, for the verdict.
pub fn render(saved: &Saved, f: &Findings, harness_failed: bool) -> Picture {
    let d = gather(saved);
    let (timeline, caption, th) = timeline(&d, f);
    let mut holds: Vec<u64> = d
        .holds
        .iter()
        .filter_map(|h| h.end.map(|e| e.saturating_sub(h.start)))
        .collect();
    holds.sort_unstable();
    let mut gaps = d.gaps.clone();
    gaps.sort_unstable();
    let gap_svg = histogram("gaps", "hand-off gaps (an exit to the next enter)", &gaps);
    let hold_svg = histogram("holds", "hold times (enter to exit)", &holds);
    let height = th + HIST_H + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"picture\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\">\n<style>{STYLE}</style>\n"
    );
    svg.push_str(&timeline);
    let _ = writeln!(
        svg,
        "<g transform=\"translate(0,{})\">{gap_svg}</g>\n<g transform=\"translate({},{})\">{hold_svg}</g>\n</svg>",
        th + 10.0,
        HIST_W + 10.0,
        th + 10.0
    );
    let html = page(saved, f, harness_failed, &caption, &holds, &gaps, &svg);
    Picture { svg, html }
}

fn at(t: u64, t0: u64) -> String {
    format!("+{:.6} s", t.saturating_sub(t0) as f64 / 1e9)
}

fn same(h: &Hold, i: &Interval) -> bool {
    (h.writer, h.seq, h.start) == (i.writer, i.seq, i.start)
}

/// The first overlap in words (escaped), or `None`.
fn overlap_caption(f: &Findings, t0: u64) -> Option<String> {
    let (a, b) = f.first.as_ref()?;
    let both = match (a.end, b.end) {
        (Some(x), Some(y)) => format!(
            "; both held the lock for {}",
            human_ns(x.min(y).saturating_sub(b.start))
        ),
        _ => String::new(),
    };
    let host = |i: &Interval| {
        i.record
            .as_ref()
            .map_or(String::new(), |r| format!(", host \"{}\"", r.hostname))
    };
    Some(esc(&format!(
        "First overlap: writer {} (pid {}, acquisition {}{}) entered at {} while writer {} \
         (pid {}, acquisition {}{}, inside since {}) held the lock{both}.",
        b.writer,
        b.pid,
        b.seq,
        host(b),
        at(b.start, t0),
        a.writer,
        a.pid,
        a.seq,
        host(a),
        at(a.start, t0),
    )))
}

/// The timeline SVG, the caption of the page, and the timeline's height.
fn timeline(d: &Data, f: &Findings) -> (String, String, f64) {
    let n = d.holds.len();
    let t0 = f
        .span
        .map(|s| s.0)
        .or(d.holds.first().map(|h| h.start))
        .unwrap_or(0);
    // Which acquisitions to draw.
    let centre = f
        .first
        .as_ref()
        .and_then(|(a, _)| d.holds.iter().position(|h| same(h, a)));
    let (lo, hi) = if n > MAX_DRAWN {
        let lo = centre
            .unwrap_or(0)
            .saturating_sub(MAX_DRAWN / 2)
            .min(n - MAX_DRAWN);
        (lo, lo + MAX_DRAWN)
    } else {
        (0, n)
    };
    let drawn = &d.holds[lo..hi];
    let (t_lo, t_hi) = if n > MAX_DRAWN {
        let first = drawn.first().map_or(t0, |h| h.start);
        let last = drawn
            .iter()
            .map(|h| h.end.unwrap_or(h.start))
            .max()
            .unwrap_or(first);
        (first, last)
    } else {
        f.span.unwrap_or((t0, t0))
    };
    let span = t_hi.saturating_sub(t_lo).max(1) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(t_lo) as f64 / span).min(1.0) * PLOT;

    let overlap = overlap_caption(f, t0);
    let window = if n > MAX_DRAWN {
        format!(
            "Showing acquisitions {} to {} ({} of {}, from {} to {}){}; the histograms count all of them.",
            lo + 1,
            hi,
            MAX_DRAWN,
            n,
            at(t_lo, t0),
            at(t_hi, t0),
            if centre.is_some() {
                " around the first overlap"
            } else {
                ", the first ones"
            }
        )
    } else {
        format!("All {n} acquisitions drawn.")
    };
    let marks: Vec<&Mark> = d
        .marks
        .iter()
        .filter(|m| m.t >= t_lo && m.t <= t_hi)
        .collect();
    let marks_note = if marks.len() > MAX_GLYPHS {
        format!(" The first {MAX_GLYPHS} of {} marks drawn.", marks.len())
    } else {
        String::new()
    };
    let caption = format!("{window}{marks_note}");

    let harness_row = marks.iter().any(|m| m.writer.is_none());
    let top = 62.0;
    let lanes_top = top + if harness_row { LANE } else { 0.0 };
    let lanes_bottom = lanes_top + d.lanes as f64 * LANE;
    let height = lanes_bottom + 36.0;
    let mut out = format!(
        "<svg id=\"timeline\" x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" \
         data-acquisitions=\"{n}\" data-drawn=\"{}\">\n",
        drawn.len()
    );
    let _ = writeln!(
        out,
        "<text class=\"caption\" x=\"10\" y=\"16\">Holding intervals per writer, from enter to exit \
         (shades: successive lives of a writer). {}</text>",
        esc(&caption)
    );
    match &overlap {
        Some(text) => {
            let _ = writeln!(
                out,
                "<text class=\"caption overlap-caption\" id=\"overlap-caption\" x=\"10\" y=\"32\">{text}</text>"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<text class=\"caption\" x=\"10\" y=\"32\">No two holding intervals overlap.</text>"
            );
        }
    }
    // Legend.
    let mut lx = 10.0;
    for kind in [
        Kind::Kill,
        Kind::Death,
        Kind::Pause,
        Kind::Continue,
        Kind::Plant,
        Kind::Aged,
        Kind::Error,
    ] {
        let label = match kind {
            Kind::Kill => "SIGKILL",
            Kind::Death => "death",
            Kind::Pause => "SIGSTOP",
            Kind::Continue => "SIGCONT",
            Kind::Plant => "planted stale lock",
            Kind::Aged => "lock aged",
            _ => "error / lost release",
        };
        let _ = writeln!(
            out,
            "<g class=\"legend {}\" transform=\"translate({},48)\"><path d=\"{}\"/></g><text x=\"{}\" y=\"52\">{label}</text>",
            kind_name(kind),
            lx + 5.0,
            glyph_path(kind),
            lx + 13.0
        );
        lx += 30.0 + label.len() as f64 * 6.5;
    }

    let mut rows: Vec<String> = vec![String::new(); d.lanes as usize];
    let mut harness = String::new();
    for h in drawn {
        let end = h.end.unwrap_or(t_hi);
        let (x0, x1) = (x(h.start), x(end));
        let overlapping = f
            .first
            .as_ref()
            .is_some_and(|(a, b)| same(h, a) || same(h, b));
        let (class, fill) = if overlapping {
            ("hold overlap", "")
        } else if h.life % 2 == 0 {
            ("hold", " fill=\"#4878b0\"")
        } else {
            ("hold", " fill=\"#8fb3dd\"")
        };
        let ended = match (h.end, h.died) {
            (None, _) => "still inside at the end".to_string(),
            (Some(e), true) => format!("died at {}", at(e, t0)),
            (Some(e), false) => format!("held {}", human_ns(e - h.start)),
        };
        let _ = writeln!(
            rows[h.writer as usize],
            "<rect class=\"{class}\" data-writer=\"{}\" data-seq=\"{}\" x=\"{x0:.2}\" y=\"{}\" width=\"{:.2}\" height=\"{BAR}\"{fill}>\
             <title>writer {} pid {} acquisition {}: entered {}, {ended}</title></rect>",
            h.writer,
            h.seq,
            (LANE - BAR) / 2.0,
            (x1 - x0).max(0.6),
            h.writer,
            h.pid,
            h.seq,
            at(h.start, t0),
        );
    }
    for m in marks.iter().take(MAX_GLYPHS) {
        let name = kind_name(m.kind);
        let why = m
            .cause
            .as_deref()
            .map_or(String::new(), |c| format!(": {c}"));
        let who = m.writer.map_or("harness".to_string(), |w| {
            format!("writer {w} pid {}", m.pid)
        });
        let glyph = format!(
            "<g class=\"fault {name}\" data-kind=\"{name}\" transform=\"translate({:.2},{})\">\
             <title>{}</title><path d=\"{}\"/></g>\n",
            x(m.t),
            LANE / 2.0,
            esc(&format!("{name} at {}, {who}{why}", at(m.t, t0))),
            glyph_path(m.kind)
        );
        match m.writer {
            Some(w) => rows[w as usize].push_str(&glyph),
            None => harness.push_str(&glyph),
        }
    }
    if harness_row {
        let _ = writeln!(
            out,
            "<g class=\"harness\" transform=\"translate(0,{top})\"><text x=\"10\" y=\"16\">harness</text>\n{harness}</g>"
        );
    }
    for (w, row) in rows.iter().enumerate() {
        let lives = d.lives.get(w).copied().unwrap_or(0);
        let label = if lives > 0 {
            format!("writer {w} ({} lives)", lives + 1)
        } else {
            format!("writer {w}")
        };
        let _ = writeln!(
            out,
            "<g class=\"lane\" data-writer=\"{w}\" transform=\"translate(0,{})\">\
             <rect class=\"track\" x=\"{LEFT}\" y=\"2\" width=\"{PLOT}\" height=\"{}\"/>\
             <text x=\"10\" y=\"16\">{label}</text>\n{row}</g>",
            lanes_top + w as f64 * LANE,
            LANE - 4.0
        );
    }
    // The first overlap: a band where both held the lock, both intervals outlined.
    if let Some((a, b)) = &f.first {
        let both_end = match (a.end, b.end) {
            (Some(p), Some(q)) => p.min(q),
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => t_hi,
        };
        let (bx0, bx1) = (x(b.start), x(both_end.max(b.start)));
        let _ = writeln!(
            out,
            "<rect class=\"band\" x=\"{:.2}\" y=\"{lanes_top}\" width=\"{:.2}\" height=\"{}\"/>",
            bx0 - 1.0,
            (bx1 - bx0).max(0.0) + 2.0,
            lanes_bottom - lanes_top
        );
        for i in [a, b] {
            if i.start > t_hi || i.end.is_some_and(|e| e < t_lo) || i.writer >= d.lanes {
                continue;
            }
            let (x0, x1) = (x(i.start), x(i.end.unwrap_or(t_hi)));
            let _ = writeln!(
                out,
                "<rect class=\"outline\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{}\"/>",
                x0 - 3.0,
                lanes_top + i.writer as f64 * LANE + (LANE - BAR) / 2.0 - 3.0,
                (x1 - x0).max(0.6) + 6.0,
                BAR + 6.0
            );
        }
    }
    // Time axis.
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{lanes_bottom}\" x2=\"{}\" y2=\"{lanes_bottom}\"/>",
        LEFT + PLOT
    );
    for k in 0..=5 {
        let t = t_lo + (span * k as f64 / 5.0) as u64;
        let tx = x(t);
        let anchor = match k {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{tx:.2}\" y1=\"{lanes_bottom}\" x2=\"{tx:.2}\" y2=\"{}\"/>\
             <text x=\"{tx:.2}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            lanes_bottom + 4.0,
            lanes_bottom + 16.0,
            at(t, t0)
        );
    }
    out.push_str("</svg>\n");
    let page_caption = match overlap {
        Some(o) => format!("{o} {}", esc(&caption)),
        None => format!("No two holding intervals overlap. {}", esc(&caption)),
    };
    (out, page_caption, height)
}

/// A histogram of sorted `values` (nanoseconds), log-scaled bins when they
/// spread over more than two decades.
fn histogram(id: &str, title: &str, values: &[u64]) -> String {
    let (left, top, pw, ph) = (50.0, 40.0, HIST_W - 70.0, HIST_H - 80.0);
    let mut out =
        format!("<svg id=\"{id}\" x=\"0\" y=\"0\" width=\"{HIST_W}\" height=\"{HIST_H}\">\n");
    let (Some(&min), Some(&max)) = (values.first(), values.last()) else {
        let _ = writeln!(
            out,
            "<text class=\"caption\" x=\"10\" y=\"16\">{}: none</text>\n</svg>",
            esc(title)
        );
        return out;
    };
    let zeros = values.iter().take_while(|&&v| v == 0).count();
    let min_pos = values.get(zeros).copied().unwrap_or(0);
    let log = min_pos > 0 && max / min_pos >= 100;
    let lo = if log { min_pos } else { min };
    let bins = if max == lo { 1 } else { BINS };
    let edge = |k: usize| -> f64 {
        let r = k as f64 / bins as f64;
        if log {
            lo as f64 * (max as f64 / lo as f64).powf(r)
        } else {
            lo as f64 + (max - lo) as f64 * r
        }
    };
    let mut counts = vec![0u64; bins];
    for &v in &values[if log { zeros } else { 0 }..] {
        let r = if max == lo {
            0.0
        } else if log {
            (v as f64 / lo as f64).ln() / (max as f64 / lo as f64).ln()
        } else {
            (v - lo) as f64 / (max - lo) as f64
        };
        counts[((r * bins as f64) as usize).min(bins - 1)] += 1;
    }
    let zero_bin = log && zeros > 0;
    let peak = counts
        .iter()
        .copied()
        .chain(zero_bin.then_some(zeros as u64))
        .max()
        .unwrap_or(1)
        .max(1);
    let p = |q| quantile(values, q).map_or("-".into(), human_ns);
    let _ = writeln!(
        out,
        "<text class=\"caption\" x=\"10\" y=\"16\">{}</text>\
         <text x=\"10\" y=\"30\">{} values, {} bins; p50 {}, p99 {}, max {}</text>",
        esc(title),
        values.len(),
        if log { "log-scaled" } else { "linear" },
        p(0.5),
        p(0.99),
        human_ns(max)
    );
    let slots = bins + usize::from(zero_bin);
    let bw = pw / slots as f64;
    let bar = |out: &mut String, slot: usize, count: u64, class: &str, label: String| {
        let h = ph * count as f64 / peak as f64;
        let _ = writeln!(
            out,
            "<rect class=\"{class}\" data-count=\"{count}\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\">\
             <title>{}: {count}</title></rect>",
            left + slot as f64 * bw + 0.5,
            top + ph - h,
            (bw - 1.0).max(0.5),
            esc(&label)
        );
    };
    if zero_bin {
        bar(&mut out, 0, zeros as u64, "bin zero", "0 ns".into());
    }
    for (k, &c) in counts.iter().enumerate() {
        let range = format!(
            "{} to {}",
            human_ns(edge(k) as u64),
            human_ns(edge(k + 1) as u64)
        );
        bar(&mut out, k + usize::from(zero_bin), c, "bin", range);
    }
    let base = top + ph;
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>\
         <line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{peak}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        left + pw,
        left - 4.0,
        top + 4.0,
        left - 4.0
    );
    let ticks: Vec<(f64, String)> = {
        let mut t = Vec::new();
        if zero_bin {
            t.push((left + bw / 2.0, "0".to_string()));
        }
        let first = left + if zero_bin { bw } else { 0.0 };
        for k in [0, bins / 2, bins] {
            t.push((first + k as f64 * bw, human_ns(edge(k) as u64)));
        }
        t.dedup_by(|a, b| a.0 == b.0);
        t
    };
    let last = ticks.len().saturating_sub(1);
    for (k, (tx, label)) in ticks.into_iter().enumerate() {
        let anchor = if k == last && k > 0 { "end" } else { "middle" };
        let _ = writeln!(
            out,
            "<text x=\"{tx:.2}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            base + 14.0,
            esc(&label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The HTML page: a summary table, the caption, the SVG.
fn page(
    saved: &Saved,
    f: &Findings,
    harness_failed: bool,
    caption: &str,
    holds: &[u64],
    gaps: &[u64],
    svg: &str,
) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let title = match &saved.run {
        Some(r) => {
            rows.push(("scenario", r.scenario.clone()));
            rows.push(("variant", r.variant.clone()));
            rows.push(("writers", r.writers.to_string()));
            let mut kinds = r.implementations.clone();
            kinds.dedup();
            if !kinds.is_empty() {
                rows.push(("implementations", kinds.join(" + ")));
            }
            rows.push(("seed", r.seed.clone()));
            format!(
                "rvlf stress: scenario {}, {} writers ({})",
                r.scenario, r.writers, r.variant
            )
        }
        None => "rvlf stress: a history".to_string(),
    };
    rows.push(("acquisitions", f.acquisitions.to_string()));
    rows.push(("violations", f.violations.to_string()));
    if let Some(c) = f.counter {
        rows.push(("counter", c.to_string()));
    }
    rows.push(("faults injected", report::faults_injected(f).to_string()));
    let deaths: u64 = f.deaths.values().sum();
    rows.push(("deaths", deaths.to_string()));
    let q = |v: &[u64], p| quantile(v, p).map_or("-".into(), human_ns);
    rows.push((
        "hold time",
        format!("p50 {}, p99 {}", q(holds, 0.5), q(holds, 0.99)),
    ));
    rows.push((
        "hand-off gap",
        format!("p50 {}, p99 {}", q(gaps, 0.5), q(gaps, 0.99)),
    ));
    let verdict = report::verdict(f, harness_failed);
    rows.push((
        "verdict",
        verdict.trim().trim_start_matches("verdict: ").to_string(),
    ));
    let mut table = String::new();
    for (k, v) in rows {
        let _ = writeln!(table, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n\
         <style>body{{font-family:sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1em}}\
         th,td{{border:1px solid #ccc;padding:2px 10px;text-align:left}}\
         .caption{{max-width:75em}}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <table class=\"summary\">\n{table}</table>\n<p class=\"caption\">{caption}</p>\n{svg}</body>\n</html>\n",
        t = esc(&title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::check::check;
    use crate::stress::history::{Event, RecordView, RunLine};

    fn ev(t: u64, kind: Kind, writer: usize, seq: u64) -> Event {
        Event::new(t, kind).by(writer, 100 + writer as u32, seq)
    }

    fn saved(events: Vec<Event>, writers: usize) -> Saved {
        let mut events = events;
        events.sort_by(Event::order);
        Saved {
            run: Some(RunLine {
                scenario: "contention".into(),
                variant: "<orig & \"inal\">".into(),
                writers,
                seed: "7".into(),
                implementations: vec![],
            }),
            events,
            end: None,
        }
    }

    fn draw(s: &Saved) -> Picture {
        let f = check(&s.events, s.end.map(|e| e.counter));
        render(s, &f, false)
    }

    /// Tags balance, attributes are quoted, `&` starts an entity: enough
    /// of XML's well-formedness to catch what a renderer gets wrong.
    fn well_formed(xml: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = xml;
        while let Some(i) = rest.find(['<', '&']) {
            let text = &rest[i..];
            if text.starts_with('&') {
                let end = text.find(';').ok_or("an unterminated entity")?;
                let name = &text[1..end];
                let known = ["amp", "lt", "gt", "quot", "#39"].contains(&name);
                if !known {
                    return Err(format!("entity &{name};"));
                }
                rest = &text[end + 1..];
                continue;
            }
            let end = text.find('>').ok_or("an unterminated tag")?;
            let tag = &text[1..end];
            if tag.contains('<') {
                return Err(format!("< inside a tag: {tag}"));
            }
            if tag.matches('"').count() % 2 == 1 {
                return Err(format!("unbalanced quotes: {tag}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else if !tag.ends_with('/') && !tag.starts_with('!') {
                stack.push(tag.split_whitespace().next().unwrap_or(""));
            }
            rest = &text[end + 1..];
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    #[test]
    fn a_clean_history_draws_every_acquisition_and_no_overlap() {
        let mut h = Vec::new();
        for i in 0..30u64 {
            let w = (i % 3) as usize;
            h.push(ev(10 * i, Kind::Enter, w, i / 3));
            h.push(ev(10 * i + 4, Kind::Exit, w, i / 3));
        }
        let mut death = ev(305, Kind::Death, 1, 10);
        death.cause = Some("harness SIGKILL".into());
        h.push(ev(304, Kind::Kill, 1, 10));
        h.push(death);
        h.push(Event::new(306, Kind::Plant));
        let p = draw(&saved(h, 3));
        assert_eq!(p.svg.matches("class=\"lane\"").count(), 3);
        assert_eq!(p.svg.matches("class=\"hold\"").count(), 30);
        assert!(!p.svg.contains("overlap\""), "{}", p.svg);
        assert_eq!(p.svg.matches("class=\"fault ").count(), 3);
        assert!(p.svg.contains("class=\"harness\""));
        assert!(p.svg.contains("writer 1 (2 lives)"));
        assert!(p.html.starts_with("<!doctype html>"));
        assert!(p.html.contains("<meta charset=\"utf-8\">"));
        assert!(p.html.contains(&p.svg), "the page embeds the same SVG");
        well_formed(&p.svg).expect("the SVG is well-formed");
    }

    #[test]
    fn the_first_overlap_is_highlighted_and_its_text_escaped() {
        let mut enter = ev(12, Kind::Enter, 1, 9);
        enter.record = Some(RecordView {
            pid: 101,
            hostname: "<evil&host>".into(),
            timestamp_ns: "1".into(),
            writer_id: "00".into(),
        });
        let h = vec![
            ev(1, Kind::Enter, 0, 3),
            ev(2, Kind::Exit, 0, 3),
            ev(10, Kind::Enter, 0, 4),
            enter,
            ev(15, Kind::Exit, 1, 9),
            ev(20, Kind::Exit, 0, 4),
            // A second overlap, not the first.
            ev(30, Kind::Enter, 2, 1),
            ev(31, Kind::Enter, 0, 5),
            ev(32, Kind::Exit, 0, 5),
            ev(33, Kind::Exit, 2, 1),
        ];
        let p = draw(&saved(h, 3));
        let overlaps: Vec<&str> = p
            .svg
            .match_indices("class=\"hold overlap\"")
            .map(|(i, _)| &p.svg[i..i + 60])
            .collect();
        assert_eq!(overlaps.len(), 2, "{overlaps:?}");
        assert!(
            overlaps[0].contains("data-writer=\"0\" data-seq=\"4\""),
            "{overlaps:?}"
        );
        assert!(
            overlaps[1].contains("data-writer=\"1\" data-seq=\"9\""),
            "{overlaps:?}"
        );
        assert_eq!(p.svg.matches("class=\"outline\"").count(), 2);
        assert!(p.svg.contains("id=\"overlap-caption\""));
        assert!(p.svg.contains("First overlap: writer 1 (pid 101, acquisition 9, host &quot;&lt;evil&amp;host&gt;&quot;)"), "{}", p.svg);
        assert!(p.html.contains("&lt;orig &amp; &quot;inal&quot;&gt;"));
        assert!(!p.html.contains("<evil"));
        well_formed(&p.svg).expect("the SVG is well-formed");
    }

    #[test]
    fn a_long_history_draws_a_window_around_the_first_overlap() {
        let n = MAX_DRAWN as u64 + 1000;
        let mut h = Vec::new();
        for i in 0..n {
            let w = (i % 2) as usize;
            // Hold times from 1 ns to a millisecond: a wide spread.
            let hold = 1 + (i % 7) * (i % 7) * (i % 7) * 3000;
            let t = i * 10_000_000;
            h.push(ev(t, Kind::Enter, w, i));
            if i == 5500 {
                h.push(ev(t + 1000, Kind::Enter, 1 - w, n + 1));
                h.push(ev(t + 2000, Kind::Exit, 1 - w, n + 1));
            }
            h.push(ev(t + hold, Kind::Exit, w, i));
        }
        let p = draw(&saved(h, 2));
        assert_eq!(p.svg.matches("class=\"hold").count(), MAX_DRAWN);
        assert_eq!(p.svg.matches("class=\"hold overlap\"").count(), 2);
        assert!(p.svg.contains(&format!("data-acquisitions=\"{}\"", n + 1)));
        assert!(p.svg.contains(&format!("({MAX_DRAWN} of {}", n + 1)));
        assert!(p.svg.contains("around the first overlap"));
        assert!(p.svg.contains("log-scaled"), "hold times spread widely");
        let holds = &p.svg[p.svg.find("id=\"holds\"").expect("holds")..];
        let counted: u64 = holds
            .match_indices("data-count=\"")
            .map(|(i, m)| {
                let s = &holds[i + m.len()..];
                s[..s.find('"').expect("quote")]
                    .parse::<u64>()
                    .expect("count")
            })
            .sum();
        assert_eq!(counted, n + 1, "the histograms count every acquisition");
        well_formed(&p.svg).expect("the SVG is well-formed");
    }

    #[test]
    fn an_empty_history_still_draws() {
        let p = draw(&saved(vec![], 2));
        assert!(p.svg.contains("id=\"gaps\"") && p.svg.contains("id=\"holds\""));
        assert_eq!(p.svg.matches("class=\"lane\"").count(), 2);
        well_formed(&p.svg).expect("the SVG is well-formed");
    }
}
