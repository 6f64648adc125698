//! How figures are written: times, ratios and spreads in the report's tables.

use crate::summary::Spread;

pub fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1000.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{:.2} µs", ns / 1000.0)
    }
}

pub fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}x")
    } else {
        format!("{r:.1}x")
    }
}

pub fn fmt_spread(s: &Spread, f: fn(f64) -> String, runs: usize) -> String {
    if runs > 1 {
        format!("{} – {}", f(s.min), f(s.max))
    } else {
        "–".into()
    }
}
