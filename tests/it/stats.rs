//! The `Stats` snapshot as users print and export it.

use cachepool::CachePool;

#[test]
fn stats_display_is_one_line_with_every_field() {
    let pool = CachePool::new(String::new);
    let s = pool.get();
    pool.put(s);
    let line = pool.stats().to_string();
    assert_eq!(
        line,
        "new=1 get=1 put=1 closed=0 hits_local=0 hits_global=0 detached=0 prefilled=0 \
         evicted=0 trimmed=0 invalid=0 idle=1"
    );
    assert!(!line.contains('\n'));
}

#[cfg(feature = "serde")]
#[test]
fn stats_serde_round_trips_through_json() {
    let pool = CachePool::new(|| 0u8);
    pool.put(pool.get());
    let stats = pool.stats();
    let json = serde_json::to_string(&stats).unwrap();
    assert!(
        json.contains(r#""new":1"#) && json.contains(r#""idle":1"#),
        "{json}"
    );
    let back: cachepool::Stats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);
}
