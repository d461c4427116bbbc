//! `--plot DIR`: SVG bar charts with plotters (SVG backend only; text is
//! written as SVG `<text>`, so no font files or system libraries are needed).
//!
//! One chart per throughput scenario (a bar per case and peer, M events/s)
//! and one per latency scenario (a bar per peer and percentile, log scale);
//! S9, which has both kinds of case, gets both charts.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::report::{Outcome, Report, ScenarioResult};

/// The colour of a peer's bars.
fn color(peer: &str) -> RGBColor {
    match peer {
        "pinbus" => RGBColor(0xd6, 0x27, 0x28),
        "disruptor" => RGBColor(0x1f, 0x77, 0xb4),
        "crossbeam-channel" => RGBColor(0x2c, 0xa0, 0x2c),
        "flume" => RGBColor(0xff, 0x7f, 0x0e),
        "tokio-broadcast" => RGBColor(0x94, 0x67, 0xbd),
        "tokio-mpsc" => RGBColor(0x8c, 0x56, 0x4b),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// One horizontal bar: label, value, colour key.
struct Bar {
    label: String,
    value: f64,
    peer: &'static str,
}

/// Draws horizontal bars into `path`.
fn bars(path: &Path, caption: &str, unit: &str, bars: &[Bar], log: bool) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    if bars.is_empty() {
        return Ok(());
    }
    let height = 90 + 26 * bars.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max = bars
        .iter()
        .map(|b| b.value)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let n = bars.len();
    // Segment 0 is drawn at the bottom: reverse, so the chart reads top-down
    // in table order.
    let bars: Vec<&Bar> = bars.iter().rev().collect();
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            labels.get(*i).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(260);
    if log {
        let mut chart = builder
            .build_cartesian_2d((1f64..max.max(10.0)).log_scale(), (0..n).into_segmented())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&label_of)
            .x_label_formatter(&|v| crate::report::nanos(*v as u64))
            .x_desc(unit)
            .disable_y_mesh()
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [
                        (1.0, SegmentValue::Exact(i)),
                        (b.value.max(1.0), SegmentValue::Exact(i + 1)),
                    ],
                    color(b.peer).filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        // White outlines: a gap between neighbouring bars.
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [
                        (1.0, SegmentValue::Exact(i)),
                        (b.value.max(1.0), SegmentValue::Exact(i + 1)),
                    ],
                    WHITE.stroke_width(3),
                )
            }))
            .map_err(|e| err(&e))?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(0f64..max, (0..n).into_segmented())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&label_of)
            .x_desc(unit)
            .disable_y_mesh()
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (b.value, SegmentValue::Exact(i + 1)),
                    ],
                    color(b.peer).filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        // White outlines: a gap between neighbouring bars.
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (b.value, SegmentValue::Exact(i + 1)),
                    ],
                    WHITE.stroke_width(3),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{:.1}", b.value),
                    (b.value, SegmentValue::CenterOf(i)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The bars of a throughput scenario (M events/s).
fn throughput_bars(s: &ScenarioResult) -> Vec<Bar> {
    let mut out = Vec::new();
    for case in &s.cases {
        for r in &case.results {
            if let Outcome::Throughput { median, .. } = &r.outcome {
                out.push(Bar {
                    label: format!("{} · {}", case.label, r.peer),
                    value: median.rate / 1e6,
                    peer: r.peer,
                });
            }
        }
    }
    out
}

/// The bars of the latency scenario (ns).
fn latency_bars(s: &ScenarioResult) -> Vec<Bar> {
    let mut out = Vec::new();
    for case in &s.cases {
        for r in &case.results {
            if let Outcome::Latency { median, .. } = &r.outcome {
                for (name, v) in [
                    ("p50", median.p50),
                    ("p99", median.p99),
                    ("p99.9", median.p999),
                    ("max", median.max),
                ] {
                    let label = if s.cases.len() > 1 {
                        format!("{} · {} {name}", case.label, r.peer)
                    } else {
                        format!("{} {name}", r.peer)
                    };
                    out.push(Bar {
                        label,
                        value: v as f64,
                        peer: r.peer,
                    });
                }
            }
        }
    }
    out
}

/// Writes every chart into `dir` (created if missing); returns the files.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for s in &report.scenarios {
        // A chart per kind the scenario measured (S9 has both).
        let charts = [
            (
                latency_bars(s),
                "ns (log scale)",
                true,
                format!("{}-latency.svg", s.id),
            ),
            (
                throughput_bars(s),
                "M events/s",
                false,
                format!("{}-throughput.svg", s.id),
            ),
        ];
        for (bars_, unit, log, name) in charts {
            if bars_.is_empty() {
                continue;
            }
            let path = dir.join(name);
            bars(&path, &format!("{} — {}", s.id, s.title), unit, &bars_, log)?;
            files.push(path);
        }
    }
    Ok(files)
}
