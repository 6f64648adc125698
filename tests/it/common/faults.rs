//! Fault injection: each of the user's callbacks the pool runs can be made to panic (or the
//! generator to fail) at a chosen rate, and every injected fault is counted.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Rng;

/// Where a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The generator panics.
    Generator,
    /// The generator returns an error.
    GeneratorError,
    /// The reset hook panics.
    Reset,
    /// The validator panics.
    Validate,
    /// The close callback panics (after the element is closed).
    Close,
    /// The reuse decider of a wrapper panics.
    Decider,
    /// The closure run by a wrapper panics.
    Job,
    /// A user's code panics while it holds a guard.
    UserCode,
}

impl Site {
    pub const ALL: [Site; 8] = [
        Site::Generator,
        Site::GeneratorError,
        Site::Reset,
        Site::Validate,
        Site::Close,
        Site::Decider,
        Site::Job,
        Site::UserCode,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Rates (per mille) and counts of injected faults.
pub struct Faults {
    per_mille: [u32; 8],
    injected: [AtomicU64; 8],
    seed: u64,
}

thread_local! {
    // A const cell without a destructor: callbacks may run during thread exit, after other
    // thread-locals are gone, and this one must still be readable then.
    static STREAM: Cell<u64> = const { Cell::new(0) };
}

static STREAMS: AtomicU64 = AtomicU64::new(1);

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::new([0; 8], 0)
    }

    /// `rate(site)` per mille at each site, drawn from streams derived from `seed`.
    pub fn new(per_mille: [u32; 8], seed: u64) -> Faults {
        Faults {
            per_mille,
            injected: Default::default(),
            seed,
        }
    }

    /// The same rate at every site.
    pub fn everywhere(per_mille: u32, seed: u64) -> Faults {
        Faults::new([per_mille; 8], seed)
    }

    pub fn rate(&self, site: Site) -> u32 {
        self.per_mille[site.index()]
    }

    /// Whether to inject a fault at `site` now; counts it if so.
    pub fn roll(&self, site: Site) -> bool {
        if self.rate(site) == 0 {
            return false;
        }
        let hit = STREAM.with(|stream| {
            let mut rng = match stream.get() {
                0 => Rng::new(self.seed ^ STREAMS.fetch_add(1, Ordering::Relaxed)),
                state => Rng(state),
            };
            let hit = rng.chance(self.rate(site));
            stream.set(rng.0);
            hit
        });
        if hit {
            self.injected[site.index()].fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    pub fn injected(&self, site: Site) -> u64 {
        self.injected[site.index()].load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        Site::ALL.iter().map(|&s| self.injected(s)).sum()
    }

    /// Counts a fault the test injected by hand (its own code panicking at `site`).
    pub fn count(&self, site: Site) {
        self.injected[site.index()].fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} faults (", self.total())?;
        for (i, site) in Site::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{site:?} {}", self.injected(*site))?;
        }
        f.write_str(")")
    }
}
