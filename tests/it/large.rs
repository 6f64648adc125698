//! Large elements (a kilobyte and more, as parser states and search caches are): the pool keeps
//! each in a block of its own, so that a checkout hands out the element where it lies, and
//! every path that takes one in or out (by value, by guard, closed, trimmed, across threads,
//! at thread exit, after a panic) moves it whole, once, and drops it once.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, mpsc};

use cachepool::{CachePool, Checkout, OwnedCheckout, Reset, Weigh};

use crate::common::{Rng, Site, expect_injected, inject, seed, silence_injected_panics};

/// Words of a [`Big`]: 2 KiB, well above what a pool moves by value.
const WORDS: usize = 256;

/// A large element: an id, a body that says which element it is, and a heap part, so that a
/// lost or doubled move shows as a wrong body, a leak or a double free.
struct Big {
    id: usize,
    words: [u64; WORDS],
    name: String,
    /// Elements of the test alive now: up when one is made, down when one drops.
    alive: Arc<AtomicUsize>,
}

impl Big {
    /// Whether the body is still the one `id` was made with (ignoring the last word, which
    /// the tests scribble on).
    fn intact(&self) -> bool {
        self.words[..WORDS - 1]
            .iter()
            .all(|&w| w == self.id as u64 * 3 + 1)
            && self.name == format!("big-{}", self.id)
    }
}

impl Drop for Big {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Relaxed);
    }
}

/// What one test's pool made and closed.
#[derive(Default)]
struct Books {
    next: AtomicUsize,
    alive: Arc<AtomicUsize>,
    closed: Mutex<Vec<usize>>,
}

impl Books {
    fn make(&self) -> Big {
        let id = self.next.fetch_add(1, Relaxed);
        self.alive.fetch_add(1, Relaxed);
        Big {
            id,
            words: [id as u64 * 3 + 1; WORDS],
            name: format!("big-{id}"),
            alive: Arc::clone(&self.alive),
        }
    }

    fn close(&self, big: Big) {
        assert!(big.intact(), "element {} closed with a torn body", big.id);
        self.closed.lock().unwrap().push(big.id);
    }

    /// Checks, once the pool and every element the test held are gone, that each element
    /// made was closed exactly once, and that none is alive (none leaked or dropped twice).
    fn balance(&self, detached: usize) {
        let closed = self.closed.lock().unwrap();
        let unique: HashSet<_> = closed.iter().collect();
        assert_eq!(unique.len(), closed.len(), "an element closed twice");
        assert_eq!(
            closed.len() + detached,
            self.next.load(Relaxed),
            "made {} elements, closed {}, detached {detached}, alive {}",
            self.next.load(Relaxed),
            closed.len(),
            self.alive.load(Relaxed)
        );
        assert_eq!(self.alive.load(Relaxed), 0, "an element leaked");
    }
}

fn pool(books: &Arc<Books>) -> cachepool::Builder<Big> {
    let (make, close) = (Arc::clone(books), Arc::clone(books));
    CachePool::builder(move || make.make()).close_callback(move |big| close.close(big))
}

#[test]
fn a_checked_out_large_element_is_handed_out_where_it_lies() {
    let books = Arc::new(Books::default());
    let pool = pool(&books).build();
    let first = {
        let mut big = pool.checkout();
        big.words[WORDS - 1] = 42;
        &*big as *const Big
    };
    for _ in 0..3 {
        let big = pool.checkout();
        assert_eq!(&*big as *const Big, first, "the element moved");
        assert_eq!((big.id, big.words[WORDS - 1]), (0, 42));
    }
    // Two at once, given back out of order: each stays where it is.
    let (a, b) = (pool.checkout(), pool.checkout());
    let (pa, pb) = (&*a as *const Big, &*b as *const Big);
    drop(a);
    drop(b);
    let (c, d) = (pool.checkout(), pool.checkout());
    assert_eq!(
        HashSet::from([&*c as *const Big, &*d as *const Big]),
        HashSet::from([pa, pb])
    );
    drop((c, d));
    drop(pool);
    books.balance(0);
}

#[test]
fn large_elements_by_value_and_by_guard_keep_their_bodies() {
    let books = Arc::new(Books::default());
    let pool = pool(&books).pool_size(4).thread_capacity(2).build();
    let mut rng = Rng::new(seed());
    let mut held: Vec<Big> = Vec::new();
    let mut detached = Vec::new();
    for _ in 0..if cfg!(miri) { 100 } else { 2_000 } {
        match rng.below(8) {
            0 | 1 => held.push(pool.get()),
            2 | 3 if !held.is_empty() => pool.put(held.swap_remove(0)),
            4 => drop(pool.checkout()),
            5 => Checkout::discard(pool.checkout()),
            6 if detached.len() < 8 => detached.push(Checkout::detach(pool.checkout())),
            _ => {
                let guard = pool.checkout_owned();
                assert!(guard.intact());
                let guard = std::thread::spawn(move || guard).join().unwrap();
                drop(guard);
            }
        }
        assert!(held.iter().all(Big::intact));
    }
    assert!(detached.iter().all(Big::intact));
    let detached_count = detached.len();
    drop(detached);
    for big in held {
        pool.close(big);
    }
    drop(pool);
    books.balance(detached_count);
}

/// Hooks that refuse or panic on large elements: each refused or caught element is closed
/// once, with its body, and nothing leaks.
#[test]
fn hooks_that_refuse_or_panic_on_large_elements_close_them_once() {
    let _quiet = silence_injected_panics();

    #[derive(Clone)]
    struct PanicOnThird;
    impl Reset<Big> for PanicOnThird {
        fn reset(&self, big: &mut Big) -> bool {
            if big.id % 3 == 2 {
                inject(Site::Reset);
            }
            big.id % 3 != 1
        }
    }

    let books = Arc::new(Books::default());
    let pool = pool(&books)
        .reset_with(PanicOnThird)
        .reset(|big| big.words[WORDS - 1] < 1_000)
        .validate(|big| {
            if big.words[WORDS - 1] == 7 {
                inject(Site::Validate);
            }
            big.words[WORDS - 1] != 5
        })
        .build();
    for i in 0..60u64 {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut big = pool.checkout();
            big.words[WORDS - 1] = i % 8;
            if i % 11 == 0 {
                big.words[WORDS - 1] = 5_000; // the boxed hook refuses it
            }
            if i % 13 == 0 {
                inject(Site::UserCode); // the guard drops while panicking: closed
            }
            drop(big);
            let big = pool.get();
            pool.put(big);
        }));
        if let Err(panic) = result {
            expect_injected(panic);
        }
    }
    drop(pool);
    books.balance(0);
}

/// Weighed pools with large elements, the weigher boxed and in the pool's type: the weights
/// travel with the elements, `idle_weight` is exact on the quiet pool, and a heavy element
/// goes to the shelf and comes back intact.
#[test]
fn weighed_pools_of_large_elements_keep_their_weights() {
    fn exercise<R: Reset<Big>>(pool: &CachePool<Big, R>, name: &str) {
        let mut light = pool.checkout();
        light.words[WORDS - 1] = 11; // never a new element's `3 id + 1`
        drop(light);
        assert_eq!(pool.stats().idle_weight, 11, "{name}: a light element");
        let mut heavy = pool.get_at_least(3_000);
        assert_ne!(
            heavy.words[WORDS - 1],
            11,
            "{name}: a new one, not the light one"
        );
        heavy.words[WORDS - 1] = 3_000;
        pool.put(heavy);
        match pool.stats().idle_weight {
            3_011 => {
                let heavy = pool.checkout_at_least(3_000);
                assert!(heavy.intact() && heavy.words[WORDS - 1] == 3_000, "{name}");
            }
            11 => assert_eq!(pool.stats().closed, 1, "{name}: closed, as it did not fit"),
            other => panic!("{name}: idle weight {other}"),
        }
    }
    let books = Arc::new(Books::default());
    let weigh = |big: &Big| big.words[WORDS - 1] as usize;
    let boxed = pool(&books)
        .weigher(weigh)
        .pool_size(4)
        .max_idle_weight(8_000)
        .build();
    exercise(&boxed, "boxed");
    let typed = pool(&books)
        .reset_with(Weigh(cachepool::NoReset, weigh as fn(&Big) -> usize))
        .pool_size(4)
        .max_idle_weight(8_000)
        .build();
    exercise(&typed, "typed");
    drop((boxed, typed));
    books.balance(0);
}

/// Eight threads on a small pool, with owned guards sent between them, `trim` and `clear`
/// from the side, and threads that exit with elements in their lists: every element made is
/// closed once, intact, and none is alive at the end.
#[test]
fn large_elements_across_threads_balance_the_ledger() {
    let books = Arc::new(Books::default());
    let pool = pool(&books).pool_size(16).thread_capacity(4).build();
    let rounds = if cfg!(miri) { 20 } else { 3_000 };
    let threads = 8;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| mpsc::channel::<OwnedCheckout<Big>>())
        .unzip();
    let start = Barrier::new(threads + 1);
    // Joined one by one: a scope's end waits for its threads' closures, not for their
    // thread-local destructors, where a thread's exit flush runs.
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for (t, inbox) in receivers.into_iter().enumerate() {
            let (pool, senders, start) = (&pool, senders.clone(), &start);
            workers.push(s.spawn(move || {
                let mut rng = Rng::new(seed() ^ t as u64);
                start.wait();
                let mut held = Vec::new();
                for _ in 0..rounds {
                    match rng.below(6) {
                        0 => held.push(pool.get()),
                        1 if !held.is_empty() => pool.put(held.pop().unwrap()),
                        2 => {
                            let guard = pool.checkout_owned();
                            let to = rng.below(threads);
                            let _ = senders[to].send(guard);
                        }
                        3 => {
                            let mut big = pool.checkout();
                            big.words[WORDS - 1] += 1;
                            assert!(big.intact());
                        }
                        _ => {}
                    }
                    while let Ok(guard) = inbox.try_recv() {
                        assert!(guard.intact());
                        drop(guard);
                    }
                }
                for big in held {
                    pool.put(big);
                }
                drop(senders);
                // Elements sent here after the loop drop with the channel.
            }));
        }
        drop(senders);
        start.wait();
        for i in 0..rounds / 10 {
            if i % 2 == 0 {
                pool.trim();
            } else {
                pool.clear();
            }
            std::thread::yield_now();
        }
        for worker in workers {
            worker.join().unwrap();
        }
    });
    let stats = pool.stats();
    assert!(stats.idle <= 16, "{stats}");
    drop(pool);
    books.balance(0);
}

/// Large elements in a pool with a function-pointer reset (as a `static` pool has one),
/// prefilled, and a thread that exits with its list full.
#[test]
fn large_elements_in_prefilled_pools_and_exiting_threads() {
    let books = Arc::new(Books::default());
    let pool = pool(&books)
        .reset_with(
            (|big: &mut Big| {
                big.words[WORDS - 1] = 0;
                true
            }) as fn(&mut Big) -> bool,
        )
        .pool_size(8)
        .thread_capacity(4)
        .build();
    assert_eq!(pool.prefill(8).unwrap(), 8);
    std::thread::scope(|s| {
        s.spawn(|| {
            let taken: Vec<_> = (0..4).map(|_| pool.checkout()).collect();
            assert!(taken.iter().all(|big| big.intact()));
        })
        .join()
        .unwrap();
    });
    assert_eq!(pool.stats().idle, 8);
    pool.clear();
    assert_eq!(pool.stats().idle, 0);
    drop(pool);
    books.balance(0);
}
