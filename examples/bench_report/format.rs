//! How figures are written: times, ratios and spreads in the report's tables, and the
//! shorter times of the README's table.

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

/// A time to three significant digits, whole nanoseconds from 100 ns up, without trailing
/// zeros: the README's table is read at a glance, not compared digit by digit.
pub fn fmt_ns_short(ns: f64) -> String {
    if ns >= 100.0 {
        return format!("{ns:.0} ns");
    }
    let decimals = (2 - ns.log10().floor() as i32).max(0) as usize;
    let digits = format!("{ns:.decimals$}");
    let digits = if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        &digits
    };
    format!("{digits} ns")
}
