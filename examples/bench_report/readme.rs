//! The README's performance table: a few workloads in plain words, `cachepool`'s two APIs,
//! the best other pool and no pool, written between the README's `bench:begin` and
//! `bench:end` markers.

use std::fmt::Write as _;
use std::path::Path;

use crate::Result;
use crate::format::{fmt_ns_short, fmt_ratio};
use crate::names::{
    BOX64, CACHEPOOL_BORROW, CACHEPOOL_RAW, CHANNEL_U64, CROSS_THREAD, FLOOR, NO_POOL, RAYON,
    SHAPE_1TO1, SHAPE_1TO4, SHAPE_4TO1, ST_BURST, ST_HIT, VEC4K, group, mt_hit, peer_label,
    pipeline,
};
use crate::summary::{Row, Summary, best_peer};

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

/// The README's rows: group, what it is in plain words, and the baseline of the bracketed
/// multiples (none where no baseline is a fair one: in `cross_thread` the floor's producer
/// allocates every element).
fn rows() -> Vec<(String, String, Option<&'static str>)> {
    let pipeline_row = |shape: &str, depth: usize| {
        (
            group(&pipeline(shape, depth), VEC4K),
            format!(
                "pipeline {}, channel {depth} deep, per element",
                shape.replace("to", "→")
            ),
            Some(CHANNEL_U64),
        )
    };
    let row = |group: String, what: &str| (group, what.to_owned(), Some(FLOOR));
    vec![
        row(group(ST_HIT, BOX64), "one thread, warm, `Box<[u8; 64]>`"),
        row(group(ST_HIT, VEC4K), "same, 4 KiB `Vec<u8>`"),
        row(
            group(ST_BURST, BOX64),
            "hold 16, then drop them, per element, `Box`",
        ),
        row(group(ST_BURST, VEC4K), "same, 4 KiB `Vec`"),
        row(
            group(&mt_hit(2), BOX64),
            "2 threads pinned to 2 cores, one pool, `Box`",
        ),
        row(group(&mt_hit(8), BOX64), "8 threads on 2 cores, `Box`"),
        (
            group(CROSS_THREAD, VEC4K),
            "returned by another thread (polled queue), per element".to_owned(),
            None,
        ),
        row(group(RAYON, VEC4K), "rayon `par_iter`, per record"),
        pipeline_row(SHAPE_1TO1, 64),
        pipeline_row(SHAPE_4TO1, 8),
        pipeline_row(SHAPE_1TO4, 8),
    ]
}

/// The table, in the README's words: times per element, in brackets the multiple of the
/// row's baseline.
pub fn table(summary: &Summary) -> String {
    let mut out = String::from(
        "| workload | `checkout()` | raw `get`/`put` | best other pool | no pool |\n\
         |---|--:|--:|--:|--:|\n",
    );
    for (group, what, baseline) in rows() {
        let Some(rows) = summary.get(&group) else {
            continue;
        };
        let ratio = |row: &Row| {
            baseline
                .and_then(|b| row.vs(b))
                .map(|s| fmt_ratio(s.median))
        };
        let ours = |subject: &str| {
            rows.get(subject)
                .map_or("–".into(), |row| match ratio(row) {
                    Some(r) => format!("{} ({r})", fmt_ns_short(row.ns.median)),
                    None => fmt_ns_short(row.ns.median),
                })
        };
        let peer = best_peer(rows, baseline).map_or("–".into(), |row| {
            let label = peer_label(&row.subject);
            match ratio(row) {
                Some(r) => format!("{} ({r}, {label})", fmt_ns_short(row.ns.median)),
                None => format!("{} ({label})", fmt_ns_short(row.ns.median)),
            }
        });
        let no_pool = rows
            .get(NO_POOL)
            .map_or("–".into(), |row| fmt_ns_short(row.ns.median));
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {peer} | {no_pool} |",
            ours(CACHEPOOL_BORROW),
            ours(CACHEPOOL_RAW)
        );
    }
    out
}

/// Replaces what stands between the markers in the file at `path` with `table`; a file
/// without both markers is left as it is, and said so.
pub fn rewrite(path: &Path, table: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        eprintln!(
            "bench_report: {} has no {BEGIN} … {END} block; left as it is",
            path.display()
        );
        return Ok(());
    };
    if end < begin {
        return Err(format!("{}: {END} before {BEGIN}", path.display()).into());
    }
    let new = format!("{}{BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    if new != text {
        std::fs::write(path, new)?;
    }
    eprintln!("bench_report: wrote the table of {}", path.display());
    Ok(())
}
