//! One thread's list as the pool's slow paths see it: the rule that decides where a given-back
//! element goes (`try_keep` in `src/slow_path.rs`), the refill from the global shard, what
//! `clear()` and `trim()` do to a list, and which batches a trim closes. Both sequential models
//! (`model.rs`, one thread, and `model_threads.rs`, two) describe these the same way, so they
//! are written once, here.

/// The state of one thread's list that the put rule reads and writes.
#[derive(Debug, Default)]
pub struct ListModel {
    /// Idle elements, oldest first.
    pub items: Vec<usize>,
    /// Units of budget the list holds; `items.len() <= lease`.
    pub lease: usize,
    /// The fewest elements the list held since the last `trim()`.
    pub low_water: usize,
    /// Gets minus puts as the put slow path last saw them, within `[-4, pool_size]`; negative:
    /// the thread gives back more than it takes.
    pub balance: i64,
    /// The thread's `get` and `put` counts when the put slow path last looked.
    pub gets_seen: u64,
    pub puts_seen: u64,
}

/// The pool's sizes, as the put rule needs them.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub pool_size: usize,
    /// `thread_capacity`, at most `pool_size`.
    pub capacity: usize,
    /// `max(1, capacity / 2)`.
    pub batch: usize,
}

impl Sizes {
    pub fn new(pool_size: usize, thread_capacity: usize) -> Sizes {
        let capacity = thread_capacity.min(pool_size);
        Sizes {
            pool_size,
            capacity,
            batch: (capacity / 2).max(1),
        }
    }
}

/// What a put on a list did.
#[derive(Debug)]
pub struct PutOutcome {
    /// Whether the element is in the list now (else the caller closes it).
    pub kept: bool,
    /// The oldest elements moved to the global shard, with their units, if any.
    pub spilled: Option<Vec<usize>>,
}

/// Takes up to `want` units from the pool's `free` budget; returns how many it took.
pub fn lease(free: &mut usize, want: usize) -> usize {
    let take = want.min(*free);
    *free -= take;
    take
}

/// Whether a global batch made after `made` trims is closed by the trim that makes `trims`:
/// a batch goes once it sat through a whole trim period.
pub fn trim_closes(made: u64, trims: u64) -> bool {
    made + 2 <= trims
}

impl ListModel {
    /// Takes the list's newest element, lowering the low-water mark.
    pub fn pop(&mut self) -> Option<usize> {
        let id = self.items.pop()?;
        self.low_water = self.low_water.min(self.items.len());
        Some(id)
    }

    /// Moves a batch from the global shard into an empty list, with its units, and takes its
    /// newest element; the batch sits above the list's low-water mark (0) until the next
    /// `trim()`. The list's unused lease goes back to `free` once it amounts to 16
    /// units (or a batch, if less).
    pub fn refill(&mut self, batch: Vec<usize>, sizes: Sizes, free: &mut usize) -> Option<usize> {
        debug_assert!(self.items.is_empty());
        let unused = self.lease;
        let unneeded = if unused >= 16.min(sizes.batch) {
            unused
        } else {
            0
        };
        *free += unneeded;
        self.lease = unused - unneeded + batch.len();
        self.items = batch;
        // The list was empty, so its low-water mark is 0: the batch counts as used in this
        // period.
        debug_assert_eq!(self.low_water, 0);
        let id = self.items.pop();
        self.assert_within(sizes);
        id
    }

    /// `thread_capacity` is the most idle elements a list holds, whatever its lease.
    pub fn assert_within(&self, sizes: Sizes) {
        assert!(
            self.items.len() <= sizes.capacity,
            "a list holds {} idle elements, thread_capacity is {}: {self:?}",
            self.items.len(),
            sizes.capacity
        );
    }

    /// What `clear()` or `trim()` does to the list: closes its `count` oldest elements (the
    /// caller counts them), gives back every unit it does not use, and starts a new low-water
    /// mark.
    pub fn close_oldest(&mut self, count: usize, free: &mut usize) {
        self.items.drain(..count);
        *free += self.lease - self.items.len();
        self.lease = self.items.len();
        self.low_water = self.items.len();
    }

    /// Whether the list keeps its elements for its own thread: its balance, as the put slow
    /// path last saw it, is not negative (else it is a giver's).
    pub fn keeps_for_itself(&self) -> bool {
        self.balance >= 0
    }

    /// The most idle elements the list's role lets it hold: `thread_capacity`, and for a
    /// giver 4 if that is less.
    pub fn hold_limit(&self, sizes: Sizes) -> usize {
        if self.keeps_for_itself() {
            sizes.capacity
        } else {
            4.min(sizes.capacity)
        }
    }

    /// Puts `id` on the list. `gets` and `puts` are
    /// the thread's counts so far (not counting this put); `free` is the pool's free budget.
    ///
    /// A list keeps elements while its lease and its role allow. Past that, a thread that
    /// gives back more than it takes keeps at most 4 (or `thread_capacity`, if less) and moves
    /// them to the global shard together, leasing 16 units (or a batch) at once; any other
    /// thread spills the oldest batch of a full list (`thread_capacity` elements) and leases
    /// in doubling steps once its lease is used up.
    pub fn put(
        &mut self,
        id: usize,
        gets: u64,
        puts: u64,
        sizes: Sizes,
        free: &mut usize,
    ) -> PutOutcome {
        let mut lease = |want: usize| lease(free, want);
        let len = self.items.len();
        let mut spilled = None;
        if len >= self.lease.min(self.hold_limit(sizes)) {
            let taken = (gets - self.gets_seen) as i64;
            let given = (puts - self.puts_seen) as i64;
            (self.gets_seen, self.puts_seen) = (gets, puts);
            self.balance = (self.balance + taken - given).clamp(-4, sizes.pool_size as i64);
            if self.balance < 0 {
                if len >= self.hold_limit(sizes) {
                    self.lease -= len;
                    self.low_water = 0;
                    spilled = Some(self.items.drain(..).collect());
                }
                if self.items.len() == self.lease {
                    self.lease += lease(16.min(sizes.batch));
                }
            } else if len >= self.lease.min(sizes.capacity) {
                let (spill, want) = if len >= sizes.capacity {
                    (sizes.batch.min(len), sizes.batch)
                } else {
                    (0, len.clamp(1, sizes.batch).min(sizes.capacity - len))
                };
                if spill > 0 {
                    self.lease -= spill;
                    self.low_water = self.low_water.saturating_sub(spill);
                    spilled = Some(self.items.drain(..spill).collect());
                }
                if self.items.len() == self.lease {
                    self.lease += lease(want);
                }
            }
        }
        let kept = self.items.len() < self.lease;
        if kept {
            self.items.push(id);
        }
        self.assert_within(sizes);
        PutOutcome { kept, spilled }
    }
}
