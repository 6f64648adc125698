//! The names of the comparison's subjects, workloads, elements and groups, and the order and
//! labels the report shows them in: the one place they are spelled, shared by the benchmarks
//! (which write them into criterion's ids) and by `examples/bench_report` (which reads them
//! back). Plain constants and string functions, so that both can include this file by path.

// ---------------------------------------------------------------------------------------------
// Subjects.

/// A `thread_local!` free list: the least a pool can cost, the denominator of "x floor".
pub const FLOOR: &str = "floor";
pub const NO_POOL: &str = "no_pool";
pub const STD_MUTEX: &str = "std_mutex";
pub const LFOP_LINEAR: &str = "lfop_linear";
pub const LFOP_SPINLOCK: &str = "lfop_spinlock";
pub const LFOP_MUTEX: &str = "lfop_mutex";
pub const OBJECT_POOL: &str = "object_pool";
pub const OPOOL: &str = "opool";
pub const SHARDED_SLAB: &str = "sharded_slab";
pub const CROSSBEAM_ARRAYQUEUE: &str = "crossbeam_arrayqueue";
pub const REGEX_POOL: &str = "regex_pool";
pub const CACHEPOOL_BORROW: &str = "cachepool_borrow";
pub const CACHEPOOL_CLOSURE: &str = "cachepool_closure";
pub const CACHEPOOL_TYPED_CLOSURE: &str = "cachepool_typed_closure";
pub const CACHEPOOL_FN: &str = "cachepool_fn";
pub const CACHEPOOL_OWNED: &str = "cachepool_owned";
pub const CACHEPOOL_RAW: &str = "cachepool_raw";
pub const CACHEPOOL_WEIGHED: &str = "cachepool_weighed";
pub const CACHEPOOL_WEIGHED_BOXED: &str = "cachepool_weighed_boxed";
/// `rayon` groups only: rayon's own per-worker state, no pool.
pub const RAYON_MAP_INIT: &str = "rayon_map_init";
/// `pipeline` groups only: the pipeline carrying a bare `u64`, no pool.
pub const CHANNEL_U64: &str = "channel_u64";

/// The pools a user could pick instead of `cachepool`: every subject but the baselines (the
/// floor, no pool, rayon's `map_init`, a bare channel) and `cachepool` itself.
pub const PEERS: &[&str] = &[
    STD_MUTEX,
    LFOP_LINEAR,
    LFOP_SPINLOCK,
    LFOP_MUTEX,
    OBJECT_POOL,
    OPOOL,
    SHARDED_SLAB,
    CROSSBEAM_ARRAYQUEUE,
    REGEX_POOL,
];

/// `cachepool`, each of the ways it is measured.
pub const CACHEPOOL: &[&str] = &[
    CACHEPOOL_BORROW,
    CACHEPOOL_TYPED_CLOSURE,
    CACHEPOOL_FN,
    CACHEPOOL_CLOSURE,
    CACHEPOOL_OWNED,
    CACHEPOOL_RAW,
    CACHEPOOL_WEIGHED,
    CACHEPOOL_WEIGHED_BOXED,
];

/// Every subject, in the order of the report's chart: the baselines a pool is measured
/// against, the peers, `cachepool`, then the baselines of single workloads.
pub fn subjects() -> Vec<&'static str> {
    let mut all = vec![FLOOR, NO_POOL];
    all.extend(PEERS);
    all.extend(CACHEPOOL);
    all.extend([RAYON_MAP_INIT, CHANNEL_U64]);
    all
}

/// What a reader of the README knows a peer by: its crate and type.
pub fn peer_label(subject: &str) -> &str {
    match subject {
        STD_MUTEX => "`std::sync::Mutex<Vec<T>>`",
        LFOP_LINEAR => "lockfree-object-pool `LinearObjectPool`",
        LFOP_SPINLOCK => "lockfree-object-pool `SpinLockObjectPool`",
        LFOP_MUTEX => "lockfree-object-pool `MutexObjectPool`",
        OBJECT_POOL => "object-pool",
        OPOOL => "opool",
        SHARDED_SLAB => "sharded-slab",
        CROSSBEAM_ARRAYQUEUE => "crossbeam `ArrayQueue`",
        REGEX_POOL => "regex-automata `Pool`",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads, elements and groups.

pub const ST_HIT: &str = "st_hit";
pub const ST_BURST: &str = "st_burst";
pub const CROSS_THREAD: &str = "cross_thread";
pub const RAYON: &str = "rayon";

/// The `mt_hit` workload with `threads` threads.
pub fn mt_hit(threads: usize) -> String {
    format!("mt_hit_{threads}t")
}

/// Thread counts of the `mt_hit` workloads, in report order.
pub const MT_HIT_THREADS: [usize; 2] = [2, 8];

pub const SHAPE_1TO1: &str = "1to1";
pub const SHAPE_4TO1: &str = "4to1";
pub const SHAPE_1TO4: &str = "1to4";
pub const SHAPE_1TO4TO1: &str = "1to4to1";

/// The pipeline of one shape through channels `depth` deep.
pub fn pipeline(shape: &str, depth: usize) -> String {
    format!("pipeline_{shape}_d{depth}")
}

/// Pipeline shapes and channel depths, in report order.
pub const SHAPES: [&str; 4] = [SHAPE_1TO1, SHAPE_4TO1, SHAPE_1TO4, SHAPE_1TO4TO1];
pub const PIPELINE_DEPTHS: [usize; 2] = [8, 64];

/// A 4 KiB `Vec<u8>`, and a `Box<[u8; 64]>`.
pub const VEC4K: &str = "vec4k";
pub const BOX64: &str = "box64";
/// Large elements held by value, 1,400 bytes (the size of a regex-automata search cache) and
/// 16 KiB, and the same boxed.
pub const ARR1400: &str = "arr1400";
pub const ARR16K: &str = "arr16k";
pub const BOX_ARR1400: &str = "box_arr1400";
pub const BOX_ARR16K: &str = "box_arr16k";

/// A criterion group: one workload with one element type.
pub fn group(workload: &str, element: &str) -> String {
    format!("{workload}-{element}")
}
