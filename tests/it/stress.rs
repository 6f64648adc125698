//! "Prove it never loses, duplicates or strands an element": 8 to 16 threads on two cores,
//! thousands of operations each, panics injected in every callback the pool runs, threads
//! that exit holding cached elements, threads spawned afterwards, elements given back on
//! other threads, owned guards outliving their handles, and the last handle dropped while
//! other threads run. At the end every element was closed exactly once or detached
//! (`closed + detached + held == new`, with `held == 0`), and none was lost.
//!
//! `CACHEPOOL_SOAK=1` multiplies the operations by 50; the figures are printed (run with
//! `--nocapture`) and recorded in `docs/reliability.md`.

use crate::common::hammer::{self, Config};
use crate::common::{Site, scale, seed, silence_injected_panics};

#[test]
fn injected_faults_across_thread_generations_lose_nothing() {
    let _quiet = silence_injected_panics();
    let seed = seed();
    println!("seed {seed} (replay with CACHEPOOL_SEED={seed})");
    let report = hammer::run(Config {
        name: "stress/faults_and_generations",
        threads: if cfg!(miri) { 3 } else { 12 },
        generations: if cfg!(miri) { 2 } else { 3 },
        rounds: if cfg!(miri) { 1 } else { 5 },
        ops_per_round: scale(1_500, 12),
        pool_size: 16,
        validated: true,
        fault_per_mille: 20,
        helpers: true,
        teardown_threads: if cfg!(miri) { 3 } else { 16 },
        seed,
        ..Config::default()
    });
    assert_eq!(report.lost, 0);
    if !cfg!(miri) {
        // The run must have exercised what it claims to.
        assert!(report.faults_injected > 100, "{report}");
        assert!(report.panics_caught > 50, "{report}");
        assert!(report.helper_threads > 0, "{report}");
        assert!(report.hits_global_before_teardown > 0, "{report}");
        assert!(report.reuses > 0, "{report}");
    }
}

#[test]
fn last_handle_dropped_while_sixteen_threads_run_closes_everything_once() {
    let _quiet = silence_injected_panics();
    let seed = seed();
    println!("seed {seed} (replay with CACHEPOOL_SEED={seed})");
    // Straight to the teardown race, on a pool without faults except in the close callback,
    // which also runs when the pool drops.
    let report = hammer::run(Config {
        name: "stress/teardown_race",
        rounds: if cfg!(miri) { 1 } else { 3 },
        ops_per_round: scale(1_500, 10),
        pool_size: 12,
        thread_capacity: 6,
        fault_per_mille: 5,
        helpers: true,
        teardown_threads: if cfg!(miri) { 3 } else { 16 },
        seed,
        ..Config::default()
    });
    assert_eq!(report.lost, 0);
}

#[test]
fn every_fault_site_is_exercised() {
    // The fault rates of the stress tests are per site: a site that never fires would make
    // the claim "panics injected everywhere" hollow.
    let _quiet = silence_injected_panics();
    let report = hammer::run(Config {
        name: "stress/every_site",
        ops_per_round: scale(3_000, 40),
        thread_capacity: 2,
        validated: true,
        fault_per_mille: 100,
        helpers: true,
        ..Config::default()
    });
    assert_eq!(report.lost, 0);
    if !cfg!(miri) {
        for (site, injected) in &report.faults_by_site {
            assert!(*injected > 0, "{site:?} never fired: {report}");
        }
        assert_eq!(report.faults_by_site.len(), Site::ALL.len());
    }
}
