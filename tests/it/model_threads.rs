//! Two threads, one pool, elements that cross between them: random sequences of `get`, `put`,
//! `clear()` and `trim()`, each run on thread A (the test's thread) or thread B (a worker that
//! runs one call at a time when asked, so the sequence is deterministic), against
//! `ThreadsModel`, a plain sequential description of the pool with a list per thread. After
//! every step the element handed out and `stats()` must be the model's.
//!
//! What this adds to the one-thread model (`model.rs`): elements given back on the other
//! thread, where a thread that gives back more than it takes spills batches of 4; one thread's
//! `clear()` or `trim()` reaching the other's list before it returns, and taking the unused
//! budget of both; a get on a thread whose list and the global shard are empty taking idle
//! elements from the other thread's list before it builds one; and a put on one thread that
//! finds the budget spent while the other thread holds units it does not use, and takes them.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::mpsc;
use std::thread;

use cachepool::{CachePool, Stats};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::list_model::{ListModel, Sizes, trim_closes};
use crate::common::{Ledger, Tracked, UserOps, builder, scale};

/// Thread A or thread B.
type Thread = usize;

/// One step of a test.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get(Thread),
    /// `put` on a thread of one of the elements the test holds (index modulo how many),
    /// whichever thread took it.
    Put(Thread, usize),
    Clear(Thread),
    Trim(Thread),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..2usize).prop_map(Op::Get),
        8 => (0..2usize, any::<usize>()).prop_map(|(t, i)| Op::Put(t, i)),
        1 => (0..2usize).prop_map(Op::Clear),
        1 => (0..2usize).prop_map(Op::Trim),
    ]
}

/// What one thread's list looks like to the pool: the put rule's state (`ListModel`, which
/// it derefs to) and what the slow path keeps besides.
#[derive(Debug, Default)]
struct ThreadList {
    list: ListModel,
    /// Whether the thread has a list yet (made by its first call off the hot path).
    exists: bool,
    gets: u64,
    puts: u64,
}

impl Deref for ThreadList {
    type Target = ListModel;

    fn deref(&self) -> &ListModel {
        &self.list
    }
}

impl DerefMut for ThreadList {
    fn deref_mut(&mut self) -> &mut ListModel {
        &mut self.list
    }
}

/// The pool as a plain sequential description.
#[derive(Debug)]
struct ThreadsModel {
    sizes: Sizes,
    free: usize,
    lists: [ThreadList; 2],
    /// Batches, oldest first, with the number of `trim()` calls before each was made.
    global: VecDeque<(Vec<usize>, u64)>,
    trims: u64,
    next_id: usize,
    stats: Stats,
}

impl ThreadsModel {
    fn new(pool_size: usize, thread_capacity: usize) -> Self {
        ThreadsModel {
            sizes: Sizes::new(pool_size, thread_capacity),
            free: pool_size,
            lists: Default::default(),
            global: VecDeque::new(),
            trims: 0,
            next_id: 0,
            stats: Stats::default(),
        }
    }

    fn idle(&self) -> usize {
        let lists: usize = self.lists.iter().map(|l| l.items.len()).sum();
        lists + self.global.iter().map(|(b, _)| b.len()).sum::<usize>()
    }

    fn expected_stats(&self, held: usize) -> Stats {
        let mut expected = self.stats;
        expected.idle = self.idle();
        expected.hits_local =
            expected.get - expected.new - expected.hits_global - expected.hits_stolen;
        expected.checked_out = held as u64;
        expected
    }

    fn evict(&mut self, n: usize, trimmed: bool) {
        self.stats.evicted += n as u64;
        self.stats.closed += n as u64;
        if trimmed {
            self.stats.trimmed += n as u64;
        }
    }

    /// The slow path's first step: make the list and register it.
    fn home(&mut self, t: Thread) {
        let list = &mut self.lists[t];
        if !list.exists {
            list.exists = true;
            (list.balance, list.gets_seen, list.puts_seen) = (0, list.gets, list.puts);
        }
    }

    /// `clear()` and `trim()` on every list at once: each closes its `pick` oldest elements,
    /// gives back every unit it does not use, and starts a new low-water mark.
    fn reclaim_all(&mut self, pick: fn(&ListModel) -> usize, trimmed: bool) {
        let mut closing = 0;
        for list in self.lists.iter_mut().filter(|list| list.exists) {
            let count = pick(list).min(list.items.len());
            list.close_oldest(count, &mut self.free);
            closing += count;
        }
        self.evict(closing, trimmed);
    }

    fn get(&mut self, t: Thread) -> usize {
        let id = self.take(t);
        // Counted last: a list made by this call registers with the counts before it.
        self.stats.get += 1;
        self.lists[t].gets += 1;
        id
    }

    fn take(&mut self, t: Thread) -> usize {
        let list = &mut self.lists[t];
        if list.exists
            && let Some(id) = list.pop()
        {
            return id;
        }
        self.home(t);
        let list = &mut self.lists[t];
        if let Some(id) = list.pop() {
            return id;
        }
        if let Some((batch, _)) = self.global.pop_front() {
            self.stats.hits_global += 1;
            return list.refill(batch, self.sizes, &mut self.free).unwrap();
        }
        if let Some(id) = self.steal(t) {
            self.stats.hits_stolen += 1;
            return id;
        }
        let list = &mut self.lists[t];
        self.free += list.lease;
        list.lease = 0;
        self.stats.new += 1;
        self.next_id += 1;
        self.next_id - 1
    }

    /// Up to a batch of the other thread's oldest idle elements, with their units, into this
    /// thread's empty list, if the other list keeps its elements (is no giver's); the newest
    /// of them is handed out.
    fn steal(&mut self, t: Thread) -> Option<usize> {
        let batch = self.sizes.batch;
        let [a, b] = &mut self.lists;
        let (me, other) = if t == 0 { (a, b) } else { (b, a) };
        if !other.exists || !other.keeps_for_itself() || other.items.is_empty() {
            return None;
        }
        let take = other.items.len().min(batch);
        let stolen: Vec<usize> = other.items.drain(..take).collect();
        other.lease -= take;
        other.low_water = other.low_water.saturating_sub(take);
        me.lease += take;
        me.items = stolen;
        // `me` was empty: its low-water mark is 0.
        me.items.pop()
    }

    /// Returns whether the element was kept.
    fn put(&mut self, t: Thread, id: usize) -> bool {
        if !self.lists[t].exists {
            self.home(t);
        }
        let mut kept = self.put_on_list(t, id);
        if !kept && self.idle() < self.sizes.pool_size {
            // The budget is spent: take the units the other list does not use.
            let other = &mut self.lists[1 - t];
            let unused = other.lease - other.items.len();
            other.lease -= unused;
            self.free += unused;
            if unused > 0 {
                kept = self.put_on_list(t, id);
            }
        }
        if kept {
            self.count_put(t);
        } else {
            self.stats.closed += 1;
        }
        kept
    }

    /// The put rule on thread `t`'s list; whether the list kept the element.
    fn put_on_list(&mut self, t: Thread, id: usize) -> bool {
        let list = &mut self.lists[t];
        let (gets, puts) = (list.gets, list.puts);
        let outcome = list.list.put(id, gets, puts, self.sizes, &mut self.free);
        if let Some(spilled) = outcome.spilled {
            self.global.push_back((spilled, self.trims));
        }
        outcome.kept
    }

    fn count_put(&mut self, t: Thread) {
        self.stats.put += 1;
        self.lists[t].puts += 1;
    }

    fn clear(&mut self) {
        self.reclaim_all(|list| list.items.len(), false);
        let closing: usize = self.global.drain(..).map(|(b, _)| b.len()).sum();
        self.free += closing;
        self.evict(closing, false);
    }

    fn trim(&mut self) {
        self.trims += 1;
        self.reclaim_all(|list| list.low_water, true);
        let trims = self.trims;
        let (old, kept): (VecDeque<_>, VecDeque<_>) = self
            .global
            .drain(..)
            .partition(|&(_, made)| trim_closes(made, trims));
        self.global = kept;
        let closing: usize = old.iter().map(|(b, _)| b.len()).sum();
        self.free += closing;
        self.evict(closing, true);
    }

    /// The budget's units, all accounted for.
    fn check_budget(&self) {
        let travelling: usize = self.global.iter().map(|(b, _)| b.len()).sum();
        let leased: usize = self.lists.iter().map(|l| l.lease).sum();
        assert_eq!(
            self.free + leased + travelling,
            self.sizes.pool_size,
            "{self:?}"
        );
        for list in &self.lists {
            assert!(list.items.len() <= list.lease, "{self:?}");
        }
    }
}

/// A call to run on thread B.
type Call = Box<dyn FnOnce(&CachePool<Tracked>, &Ledger) -> Option<Tracked> + Send>;

/// Thread B: runs the calls it is sent, one at a time, and sends back what each returns.
struct ThreadB {
    calls: mpsc::Sender<Call>,
    results: mpsc::Receiver<Option<Tracked>>,
}

impl ThreadB {
    fn call(
        &self,
        call: impl FnOnce(&CachePool<Tracked>, &Ledger) -> Option<Tracked> + Send + 'static,
    ) -> Option<Tracked> {
        self.calls.send(Box::new(call)).unwrap();
        self.results.recv().unwrap()
    }

    /// Runs `call` on thread A (`t == 0`, with `pool`, A's handle) or on this thread.
    fn on(&self, t: Thread, pool: &CachePool<Tracked>, call: fn(&CachePool<Tracked>)) {
        if t == 0 {
            call(pool);
        } else {
            self.call(move |pool, _| {
                call(pool);
                None
            });
        }
    }
}

/// Runs `ops` on the pool and the model side by side; returns the pool's last statistics.
fn run_threads_model(pool_size: usize, thread_capacity: usize, ops: &[Op]) -> Stats {
    let ledger = Ledger::new();
    let pool = builder(&ledger)
        .pool_size(pool_size)
        .thread_capacity(thread_capacity)
        .build();
    let mut model = ThreadsModel::new(pool_size, thread_capacity);
    let (calls, incoming) = mpsc::channel::<Call>();
    let (outgoing, results) = mpsc::channel();
    let b_pool = pool.clone();
    let b_ledger = ledger.clone();
    let worker = thread::spawn(move || {
        for call in incoming {
            outgoing.send(call(&b_pool, &b_ledger)).unwrap();
        }
    });
    let b = ThreadB { calls, results };
    let a = crate::common::Handle {
        pool: pool.clone(),
        ledger: ledger.clone(),
    };
    let mut held: Vec<Tracked> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        let context = format!(
            "step {step} {op:?} (pool_size {pool_size}, thread_capacity {thread_capacity}), \
             model before: {model:?}"
        );
        match *op {
            Op::Get(t) => {
                let expected = model.get(t);
                let e = if t == 0 {
                    a.take()
                } else {
                    b.call(|pool, ledger| {
                        let e = pool.get();
                        ledger.take(&e);
                        Some(e)
                    })
                    .unwrap()
                };
                assert_eq!(e.id(), expected, "{context}");
                held.push(e);
            }
            Op::Put(t, i) => {
                if held.is_empty() {
                    continue;
                }
                let e = held.remove(i % held.len());
                model.put(t, e.id());
                if t == 0 {
                    a.put(e);
                } else {
                    b.call(move |pool, ledger| {
                        ledger.give(&e);
                        pool.put(e);
                        None
                    });
                }
            }
            Op::Clear(t) => {
                model.clear();
                b.on(t, &pool, CachePool::clear);
            }
            Op::Trim(t) => {
                model.trim();
                b.on(t, &pool, CachePool::trim);
            }
        }
        model.check_budget();
        let stats = pool.stats();
        assert_eq!(stats, model.expected_stats(held.len()), "{context}");
        ledger
            .check_quiet(&stats, pool_size)
            .unwrap_or_else(|e| panic!("{e}: {context}"));
        ledger.assert_no_violations();
    }

    let last = pool.stats();
    held.into_iter().for_each(|e| a.put(e));
    drop(b);
    worker.join().unwrap();
    drop((a, pool));
    ledger.assert_all_accounted_for();
    last
}

#[test]
fn two_threads_passing_elements_behave_like_the_sequential_model() {
    let mut runner = TestRunner::new(Config {
        cases: scale(128, 4) as u32,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop_oneof![Just(4usize), Just(8), Just(16), 1..64usize],
        prop_oneof![Just(1usize), Just(2), Just(4), 1..16usize],
        // The cases scale with `CACHEPOOL_SOAK`, the sequences do not (one dimension only).
        prop::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 200 }),
    );
    let result = runner.run(&strategy, |(pool_size, thread_capacity, ops)| {
        run_threads_model(pool_size, thread_capacity, &ops);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A pipeline, step by step: thread A only takes, thread B only gives back. B spills batches
/// of 4, A refills from them, and the pool builds no more than are in flight plus 4.
#[test]
fn a_taker_and_a_giver_follow_the_model() {
    let mut ops = Vec::new();
    for round in 0..scale(50, 5) {
        let in_flight = 1 + round % 7;
        ops.extend((0..in_flight).map(|_| Op::Get(0)));
        ops.extend((0..in_flight).map(|_| Op::Put(1, 0)));
    }
    let stats = run_threads_model(64, 16, &ops);
    assert!(stats.new <= 7 + 4, "{stats}");
    assert!(stats.hits_global > 0, "{stats}");
}

/// `thread_capacity` bounds a giver's list: thread B only gives back what A took, and keeps
/// at most `thread_capacity` of it (4, the giver's batch, only when the capacity allows); A
/// finds the rest in the global shard and builds only what B keeps.
#[test]
fn a_giver_keeps_at_most_thread_capacity() {
    for thread_capacity in 1..=5 {
        let mut ops = vec![Op::Get(0); 8];
        ops.extend([Op::Put(1, 0); 8]);
        ops.extend([Op::Get(0); 8]);
        let stats = run_threads_model(16, thread_capacity, &ops);
        let kept_by_b = stats.new - 8;
        assert!(
            kept_by_b <= thread_capacity.min(4) as u64,
            "thread_capacity {thread_capacity}: B kept {kept_by_b}: {stats}"
        );
    }
}

/// `thread_capacity` bounds a list whatever its lease: thread A's list runs dry with 2
/// unused units, then takes a whole batch of 8 (the list B spilled when it turned giver), and
/// then A gives elements back: its lease is 10, its list holds at most 8, and what it spills
/// is where B looks first.
#[test]
fn a_list_whose_lease_exceeds_thread_capacity_holds_at_most_thread_capacity() {
    let mut ops = vec![Op::Get(0); 5];
    ops.extend([Op::Put(0, 0); 2]);
    // A's list is empty, 2 of its units unused.
    ops.extend([Op::Get(0); 2]);
    // B builds 7 and keeps them, then gives back 2 of A's: it gives more than it takes, and
    // spills its whole list (8) as one batch.
    ops.extend([Op::Get(1); 7]);
    ops.extend([Op::Put(1, 5); 7]);
    ops.extend([Op::Put(1, 0); 2]);
    // A takes that batch, with its 8 units, and gives back 3 of what it holds: its list
    // fills to 8 and spills its oldest 4 to the global shard.
    ops.push(Op::Get(0));
    ops.extend([Op::Put(0, 0); 3]);
    // B takes what it kept, then A's spilled batch, with no need to steal from A.
    ops.extend([Op::Get(1); 2]);
    let stats = run_threads_model(64, 8, &ops);
    assert_eq!(
        stats.hits_global, 2,
        "A took B's batch, B took A's: {stats}"
    );
    assert_eq!(stats.hits_stolen, 0, "{stats}");
}

/// `trim()` closes only what sat idle through a whole period, wherever an element went in
/// between: a batch that B gives back after one trim and A takes into its list is spared by
/// the next trim (it was in use during the period), and closed by the one after.
#[test]
fn a_batch_taken_into_a_list_after_a_trim_survives_the_next() {
    let mut ops = vec![Op::Get(0); 5];
    ops.push(Op::Trim(0));
    // B's fifth put sends the first four to the global shard; A takes them into its list and
    // hands out one.
    ops.extend([Op::Put(1, 0); 5]);
    ops.push(Op::Get(0));
    ops.push(Op::Trim(0));
    let spared = run_threads_model(64, 16, &ops);
    assert_eq!(
        spared.trimmed, 0,
        "all five were checked out in the period: {spared}"
    );
    ops.push(Op::Trim(0));
    let closed = run_threads_model(64, 16, &ops);
    // A's three and B's one sat idle through the period between the last two trims.
    assert_eq!(closed.trimmed, 4, "{closed}");
}
