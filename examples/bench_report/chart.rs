//! The chart, `docs/benchmarks.svg`: small multiples, one panel per workload, a bar per subject
//! at its median ratio to the floor on a log axis, a whisker for the spread over runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::format::fmt_ratio;
use crate::names::{CACHEPOOL, FLOOR, NO_POOL, PEERS, subjects};
use crate::summary::{Row, Summary};

fn color(subject: &str) -> &'static str {
    match subject {
        FLOOR => "#444444",
        NO_POOL => "#b8b8b8",
        s if CACHEPOOL.contains(&s) => "#e07000",
        _ => "#5b84b1",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of the groups of `order` that the summary holds.
pub fn chart(summary: &Summary, order: &[String], title: &str) -> String {
    let subjects = subjects();
    let groups: Vec<(&str, &BTreeMap<String, Row>)> = order
        .iter()
        .filter_map(|g| summary.get(g).map(|rows| (g.as_str(), rows)))
        .collect();
    let ratios = groups
        .iter()
        .flat_map(|(_, rows)| rows.values())
        .filter_map(|r| r.vs(FLOOR))
        .flat_map(|s| [s.min, s.max]);
    let (lo, hi) = ratios.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    // Axis from a 1-2-5 value below the smallest ratio to one above the largest.
    let steps = [1.0, 2.0, 5.0];
    let nice = |x: f64, up: bool| {
        let decade = 10f64.powf(x.log10().floor());
        let mut candidates: Vec<f64> = [decade / 10.0, decade, decade * 10.0]
            .iter()
            .flat_map(|d| steps.iter().map(move |s| s * d))
            .collect();
        candidates.sort_by(f64::total_cmp);
        if up {
            *candidates.iter().find(|&&c| c >= x * 0.999).unwrap()
        } else {
            *candidates.iter().rev().find(|&&c| c <= x * 1.001).unwrap()
        }
    };
    let (axis_lo, axis_hi) = (nice(lo.min(1.0), false), nice(hi, true));
    let ticks: Vec<f64> = (-3..4)
        .flat_map(|e| steps.iter().map(move |s| s * 10f64.powi(e)))
        .filter(|&t| t >= axis_lo * 0.999 && t <= axis_hi * 1.001)
        .collect();

    let cols = 2;
    let (label_w, bars_w, value_w) = (138.0, 250.0, 62.0);
    let panel_w = label_w + bars_w + value_w + 20.0;
    let row_h = 15.0;
    let panel_h = 34.0 + row_h * subjects.len() as f64 + 24.0;
    let top = 64.0;
    let rows_of_panels = groups.len().div_ceil(cols);
    let width = cols as f64 * panel_w + 20.0;
    let height = top + rows_of_panels as f64 * panel_h + 10.0;
    let x_of = |r: f64| {
        let t = (r.max(axis_lo).ln() - axis_lo.ln()) / (axis_hi.ln() - axis_lo.ln());
        label_w + t.clamp(0.0, 1.0) * bars_w
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"#,
        xml_escape(title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="38" fill="dimgray">Time per element over the floor's (a thread_local! free list); median of the runs, log scale; left of 1x: faster than the floor; whiskers: min–max over runs.</text>"#
    );
    let legend = [
        ("floor", FLOOR),
        ("no pool", NO_POOL),
        ("peers", PEERS[0]),
        ("cachepool", CACHEPOOL[0]),
    ];
    for (i, (name, key)) in legend.iter().enumerate() {
        let x = 10.0 + i as f64 * 110.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="47" width="12" height="10" fill="{}"/><text x="{}" y="56">{name}</text>"#,
            color(key),
            x + 16.0
        );
    }
    for (i, (group, rows)) in groups.iter().enumerate() {
        let px = 10.0 + (i % cols) as f64 * panel_w;
        let py = top + (i / cols) as f64 * panel_h;
        let _ = writeln!(svg, r#"<g transform="translate({px},{py})">"#);
        let _ = writeln!(
            svg,
            r#"<text x="0" y="16" font-size="13" font-weight="bold">{}</text>"#,
            xml_escape(group)
        );
        let bars_top = 26.0;
        let bars_bottom = bars_top + row_h * subjects.len() as f64;
        for &t in &ticks {
            let x = x_of(t);
            let stroke = if t == 1.0 { "#444" } else { "#ddd" };
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{bars_top}" x2="{x:.1}" y2="{bars_bottom}" stroke="{stroke}"/>"#
            );
            // Label the decades, and 2x (the targets' bound); the other lines stay unlabelled.
            let decade = (t.log10() - t.log10().round()).abs() < 1e-9;
            if decade || t == 2.0 {
                let label = if t < 1.0 {
                    format!("{t}")
                } else {
                    format!("{t:.0}")
                };
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="gray">{label}x</text>"#,
                    bars_bottom + 12.0
                );
            }
        }
        for (j, subject) in subjects.iter().enumerate() {
            let y = bars_top + j as f64 * row_h;
            let weight = if CACHEPOOL.contains(subject) {
                "bold"
            } else {
                "normal"
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="{weight}">{subject}</text>"#,
                label_w - 6.0,
                y + 11.0
            );
            let Some(s) = rows.get(*subject).and_then(|r| r.vs(FLOOR)) else {
                continue;
            };
            // Bars grow from the floor's 1x line: right when slower than the floor, left when
            // faster.
            let (x0, x1) = (x_of(1.0), x_of(s.median));
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                x0.min(x1),
                y + 2.0,
                (x1 - x0).abs().max(2.0),
                row_h - 4.0,
                color(subject)
            );
            if s.max > s.min {
                let (a, b) = (x_of(s.min), x_of(s.max));
                let cy = y + row_h / 2.0;
                let _ = writeln!(
                    svg,
                    r#"<path d="M{a:.1} {cy:.1}H{b:.1}M{a:.1} {:.1}V{:.1}M{b:.1} {:.1}V{:.1}" stroke="black" stroke-width="0.8" fill="none"/>"#,
                    cy - 3.0,
                    cy + 3.0,
                    cy - 3.0,
                    cy + 3.0
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-weight="{weight}">{}</text>"#,
                label_w + bars_w + 6.0,
                y + 11.0,
                fmt_ratio(s.median)
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    svg.push_str("</svg>\n");
    svg
}
