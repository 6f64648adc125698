//! Eight threads (more than this machine's cores) hammer one small pool: no element is ever
//! held by two users, idle never exceeds `pool_size`, and the ledger balances exactly at every
//! quiet point and at the end. No faults are injected here (see `stress` for those).

use crate::common::hammer::{self, Config};
use crate::common::{scale, seed};

#[test]
fn eight_threads_hammering_a_small_pool_never_share_an_element() {
    let seed = seed();
    println!("seed {seed} (replay with CACHEPOOL_SEED={seed})");
    let report = hammer::run(Config {
        name: "concurrency/eight_threads",
        threads: if cfg!(miri) { 3 } else { 8 },
        rounds: if cfg!(miri) { 2 } else { 10 },
        ops_per_round: scale(3_000, 15),
        pool_size: 8,
        seed,
        ..Config::default()
    });
    assert_eq!(report.lost, 0);
    assert_eq!(report.faults_injected, 0);
    assert_eq!(
        report.panics_caught, 0,
        "nothing panics without injected faults"
    );
    assert!(report.reuses > 0, "a pool that never reuses proves nothing");
    assert!(report.quiet_checks > 0 && report.gated_samples > 0);
}

#[test]
fn eight_threads_on_a_pool_without_thread_lists() {
    // `thread_capacity` 0: every element goes through the global shard, the most contended
    // path, where a batch taken by one thread must never reach another.
    let seed = seed();
    println!("seed {seed} (replay with CACHEPOOL_SEED={seed})");
    let report = hammer::run(Config {
        name: "concurrency/no_thread_lists",
        threads: if cfg!(miri) { 3 } else { 8 },
        rounds: if cfg!(miri) { 1 } else { 5 },
        ops_per_round: scale(2_000, 15),
        pool_size: 6,
        thread_capacity: 0,
        validated: true,
        seed,
        ..Config::default()
    });
    assert_eq!(report.lost, 0);
    assert!(report.reuses > 0);
}
