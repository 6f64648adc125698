//! Summarises the runs: per group and subject, the median time per element over runs, its
//! min-max spread, and the ratios to the baselines, taken within each run first.

use std::collections::BTreeMap;

use crate::criterion::Measure;
use crate::names::{CACHEPOOL_BORROW, CHANNEL_U64, FLOOR, PEERS};

/// What a subject's time is divided by, within one run: the floor, `cachepool`'s borrowing
/// guard (the "x cachepool" column), and the pipelines' bare channel.
pub const BASELINES: [&str; 3] = [FLOOR, CACHEPOOL_BORROW, CHANNEL_U64];

/// Median and extremes of some figures.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut xs: Vec<f64>) -> Option<Spread> {
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: xs[0],
            max: xs[n - 1],
        })
    }
}

/// One subject in one group, over all runs.
#[derive(Clone, Debug)]
pub struct Row {
    pub subject: String,
    /// Time per element.
    pub ns: Spread,
    /// Subject over each of [`BASELINES`] present in its group, per run.
    vs: [Option<Spread>; BASELINES.len()],
    /// Elements created, and the most in flight, medians over the runs that recorded them.
    pub created: Option<Spread>,
    pub in_flight: Option<Spread>,
    pub runs: usize,
}

impl Row {
    /// The subject over `baseline`, one of [`BASELINES`].
    pub fn vs(&self, baseline: &str) -> Option<Spread> {
        let i = BASELINES.iter().position(|&b| b == baseline)?;
        self.vs[i]
    }
}

/// group -> subject -> row.
pub type Summary = BTreeMap<String, BTreeMap<String, Row>>;

/// One subject's figures in one run: time, ratio to each baseline, created, in flight.
struct PerRun {
    ns: f64,
    vs: [Option<f64>; BASELINES.len()],
    created: Option<f64>,
    in_flight: Option<f64>,
}

pub fn summarise(runs: &[Vec<Measure>]) -> Summary {
    let mut per: BTreeMap<String, BTreeMap<String, Vec<PerRun>>> = BTreeMap::new();
    for run in runs {
        let find = |group: &str, subject: &str| {
            run.iter()
                .find(|m| m.group == group && m.subject == subject)
                .map(|m| m.ns)
        };
        for m in run {
            let vs = BASELINES.map(|baseline| find(&m.group, baseline).map(|b| m.ns / b));
            per.entry(m.group.clone())
                .or_default()
                .entry(m.subject.clone())
                .or_default()
                .push(PerRun {
                    ns: m.ns,
                    vs,
                    created: m.created,
                    in_flight: m.in_flight,
                });
        }
    }
    per.into_iter()
        .map(|(group, subjects)| {
            let rows = subjects
                .into_iter()
                .map(|(subject, xs)| {
                    let row = Row {
                        subject: subject.clone(),
                        ns: Spread::of(xs.iter().map(|x| x.ns).collect()).unwrap(),
                        vs: std::array::from_fn(|i| {
                            Spread::of(xs.iter().filter_map(|x| x.vs[i]).collect())
                        }),
                        created: Spread::of(xs.iter().filter_map(|x| x.created).collect()),
                        in_flight: Spread::of(xs.iter().filter_map(|x| x.in_flight).collect()),
                        runs: xs.len(),
                    };
                    (subject, row)
                })
                .collect();
            (group, rows)
        })
        .collect()
}

/// The subject of `group` whose time changed most between runs, with its spread (none with a
/// single run).
pub fn widest_swing(summary: &Summary, group: &str) -> Option<(String, Spread)> {
    summary
        .get(group)?
        .values()
        .filter(|row| row.runs > 1)
        .max_by(|a, b| (a.ns.max / a.ns.min).total_cmp(&(b.ns.max / b.ns.min)))
        .map(|row| (row.subject.clone(), row.ns))
}

/// The median ratio of `row` to `baseline`; NaN where the group has no such baseline, so
/// that it sorts last.
pub fn ratio(row: &Row, baseline: &str) -> f64 {
    row.vs(baseline).map_or(f64::NAN, |s| s.median)
}

/// The fastest peer of a group, by its median ratio to `baseline`, or by its median time
/// where there is no baseline.
pub fn best_peer<'a>(rows: &'a BTreeMap<String, Row>, baseline: Option<&str>) -> Option<&'a Row> {
    let key = |row: &Row| baseline.map_or(row.ns.median, |b| ratio(row, b));
    rows.values()
        .filter(|r| PEERS.contains(&r.subject.as_str()))
        .min_by(|a, b| key(a).total_cmp(&key(b)))
}
