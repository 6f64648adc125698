//! The targets tables: for each target and group, where `cachepool` stands against its
//! baseline and against the best peer, and whether it meets the target.

use std::fmt::Write as _;

use crate::format::fmt_ratio;
use crate::names::{
    BOX64, CACHEPOOL_BORROW, CACHEPOOL_RAW, CHANNEL_U64, CROSS_THREAD, FLOOR, PIPELINE_DEPTHS,
    RAYON, SHAPES, ST_BURST, ST_HIT, VEC4K, group, mt_hit, pipeline,
};
use crate::summary::{Summary, best_peer, ratio};

/// A target, checked against the summary.
struct Target {
    groups: Vec<String>,
    /// What `cachepool`'s time is a multiple of: the floor, or for the pipelines the same
    /// pipeline carrying a bare `u64` (what a pool in a pipeline has to add to).
    baseline: &'static str,
    /// Most `cachepool` may cost, as a multiple of the baseline (None: no such bound).
    max_vs_baseline: Option<f64>,
    /// `true`: strictly faster than every peer; `false`: no slower than the best one.
    beat_peers: bool,
}

impl Target {
    fn vs_floor(groups: Vec<String>, max_vs_floor: Option<f64>, beat_peers: bool) -> Target {
        Target {
            groups,
            baseline: FLOOR,
            max_vs_baseline: max_vs_floor,
            beat_peers,
        }
    }
}

/// Both elements of a workload.
fn both(workload: &str) -> Vec<String> {
    vec![group(workload, VEC4K), group(workload, BOX64)]
}

fn targets() -> Vec<Target> {
    let pipelines = SHAPES
        .iter()
        .flat_map(|shape| PIPELINE_DEPTHS.map(|depth| group(&pipeline(shape, depth), VEC4K)))
        .collect();
    vec![
        Target::vs_floor(vec![group(ST_HIT, BOX64)], Some(1.5), true),
        Target::vs_floor(vec![group(ST_HIT, VEC4K)], Some(2.0), true),
        Target::vs_floor(both(ST_BURST), Some(1.5), true),
        Target::vs_floor(both(&mt_hit(2)), Some(2.0), true),
        Target::vs_floor(both(&mt_hit(8)), Some(2.0), true),
        Target::vs_floor(vec![group(CROSS_THREAD, VEC4K)], None, true),
        Target::vs_floor(vec![group(RAYON, VEC4K)], None, false),
        Target {
            groups: pipelines,
            baseline: CHANNEL_U64,
            max_vs_baseline: Some(1.5),
            beat_peers: true,
        },
    ]
}

/// The APIs of `cachepool` each target is checked for: the borrowing guard, and raw get/put.
const TARGET_APIS: &[(&str, &str)] = &[("checkout", CACHEPOOL_BORROW), ("get/put", CACHEPOOL_RAW)];

/// The targets tables, one per baseline: one line per target and group, each checked for
/// every API in [`TARGET_APIS`].
pub fn targets_section(summary: &Summary) -> String {
    let targets = targets();
    let mut baselines: Vec<&str> = targets.iter().map(|t| t.baseline).collect();
    baselines.dedup();
    let tables: Vec<String> = baselines
        .iter()
        .map(|&baseline| {
            let targets = targets.iter().filter(|t| t.baseline == baseline);
            table(summary, baseline, targets)
        })
        .collect();
    tables.join("\n")
}

fn table<'a>(
    summary: &Summary,
    baseline: &str,
    targets: impl Iterator<Item = &'a Target>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | target | `checkout()` (x {baseline}) | `get`/`put` (x {baseline}) | best peer (x {baseline}) | met |\n\
         |---|---|--:|--:|---|---|"
    );
    for target in targets {
        for group in &target.groups {
            let Some(rows) = summary.get(group) else {
                continue;
            };
            let best_peer = best_peer(rows, Some(baseline));
            let mut goals = Vec::new();
            if let Some(max) = target.max_vs_baseline {
                goals.push(format!("≤ {max}x {baseline}"));
            }
            if best_peer.is_some() {
                goals.push(if target.beat_peers {
                    "faster than every peer".to_string()
                } else {
                    "no slower than the best peer".to_string()
                });
            }
            let meets = |ours: f64| {
                let under_max = target.max_vs_baseline.is_none_or(|max| ours <= max);
                let vs_peer = best_peer.is_none_or(|peer| {
                    if target.beat_peers {
                        ours < ratio(peer, baseline)
                    } else {
                        ours <= ratio(peer, baseline)
                    }
                });
                under_max && vs_peer
            };
            let mut cells = Vec::new();
            let mut verdicts = Vec::new();
            for &(api, subject) in TARGET_APIS {
                match rows.get(subject) {
                    Some(row) => {
                        let ours = ratio(row, baseline);
                        cells.push(fmt_ratio(ours));
                        let verdict = if meets(ours) { "yes" } else { "**no**" };
                        verdicts.push(format!("{api}: {verdict}"));
                    }
                    None => cells.push("–".into()),
                }
            }
            let peer = best_peer.map_or("–".into(), |p| {
                format!("{} `{}`", fmt_ratio(ratio(p, baseline)), p.subject)
            });
            let _ = writeln!(
                out,
                "| {group} | {} | {} | {peer} | {} |",
                goals.join(", "),
                cells.join(" | "),
                verdicts.join(", ")
            );
        }
    }
    out
}
