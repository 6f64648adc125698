//! The `pipeline` workloads: elements checked out on one set of threads, carried through
//! bounded `crossbeam_channel`s, and given back on another: the worker-pool use the issue is
//! about, in its four shapes (1→1, 4→1, 1→4, 1→4→1) and two channel depths.
//!
//! Besides the time per element, a pipeline records how many elements were checked out at once
//! (in-flight), so that each subject's created count can be read against it.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::Bencher;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::cores::gated;
use crate::element::Element;
use crate::names;
use crate::subjects::Subject;
use crate::workloads::{Workload, spawn_pinned};

/// How the threads of a pipeline are arranged.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// One producer, one consumer.
    OneToOne,
    /// Four producers, one consumer (a collector).
    FourToOne,
    /// One producer, four consumers (workers).
    OneToFour,
    /// One producer, four workers that pass each element on unchanged through a second
    /// channel, one final consumer (a writer).
    OneToFourToOne,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [
        Shape::OneToOne,
        Shape::FourToOne,
        Shape::OneToFour,
        Shape::OneToFourToOne,
    ];

    /// Name in benchmark ids (`1to4to1`).
    fn name(self) -> &'static str {
        match self {
            Shape::OneToOne => names::SHAPE_1TO1,
            Shape::FourToOne => names::SHAPE_4TO1,
            Shape::OneToFour => names::SHAPE_1TO4,
            Shape::OneToFourToOne => names::SHAPE_1TO4TO1,
        }
    }

    /// Threads that check elements out.
    fn producers(self) -> usize {
        match self {
            Shape::FourToOne => 4,
            _ => 1,
        }
    }

    /// Threads that pass elements on, between two channels (0: a single channel).
    fn middles(self) -> usize {
        match self {
            Shape::OneToFourToOne => 4,
            _ => 0,
        }
    }

    /// Threads that give elements back.
    fn consumers(self) -> usize {
        match self {
            Shape::OneToFour => 4,
            _ => 1,
        }
    }
}

/// End-of-phase markers each sender of a stage of `senders` threads sends to a next stage of
/// `receivers` threads, and how many of them each receiver waits for. A marker is the last
/// thing a sender sends in a phase and a receiver stops receiving at its last one, so a
/// receiver that has seen all of its markers has seen every element sent to it... provided
/// the markers are shared out evenly: the shapes only ever have 1 to n or n to 1.
fn markers(senders: usize, receivers: usize) -> (usize, usize) {
    debug_assert!(senders == 1 || receivers == 1);
    (receivers.div_ceil(senders), senders.div_ceil(receivers))
}

/// A message of a pipeline: an element, or `None`, the end of a phase (warm-up, measurement).
type Message<M> = Option<M>;

/// Counts elements checked out and not yet given back, and the most at once; see
/// [`in_flight_max`].
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// The most elements in flight seen since the last [`reset_census`].
static IN_FLIGHT_MAX: AtomicUsize = AtomicUsize::new(0);
/// Pipeline runs (criterion `iter_custom` calls, each on fresh threads) since the last
/// [`reset_census`].
static RUNS: AtomicU64 = AtomicU64::new(0);
/// Elements carried, warm-ups included, since the last [`reset_census`].
static ELEMENTS: AtomicU64 = AtomicU64::new(0);

/// Starts a new census (before a subject's benchmark).
pub fn reset_census() {
    IN_FLIGHT.store(0, Relaxed);
    IN_FLIGHT_MAX.store(0, Relaxed);
    RUNS.store(0, Relaxed);
    ELEMENTS.store(0, Relaxed);
}

/// What the pipelines saw since the last [`reset_census`]: the most elements in flight at
/// once, the runs, and the elements carried (none: no pipeline ran).
pub fn census() -> Option<(usize, u64, u64)> {
    let runs = RUNS.load(Relaxed);
    (runs > 0).then(|| (IN_FLIGHT_MAX.load(Relaxed), runs, ELEMENTS.load(Relaxed)))
}

/// Counts an element checked out (`true`) or given back (`false`) in the census.
///
/// Called only in each run's warm-up phase, never in the timed one: two shared
/// read-modify-writes per element, on lines both ends of the pipe write, would cost more than
/// some pools do and blur the comparison the pipelines are for. The warm-up runs the same
/// threads over the same channels, and the most in flight is set by the pipeline, not by the
/// pool: at most `depth` per channel plus one element per thread, reached whenever the
/// consumers fall behind.
#[inline]
fn count(taken: bool) {
    if taken {
        let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
        IN_FLIGHT_MAX.fetch_max(now, Relaxed);
    } else {
        IN_FLIGHT.fetch_sub(1, Relaxed);
    }
}

/// `pipeline_<shape>_d<depth>`: producers check elements out and send them through a
/// `crossbeam_channel::bounded(depth)` to the next stage; the last stage gives them back.
/// Threads are pinned round-robin to the cores. Time per element is wall time from the first
/// producer's start to the last give-back, over the elements. Each run first carries a
/// warm-up of a few times the pipeline's capacity, untimed, and counts in-flight elements
/// there (see [`count`]).
///
/// The channel is a blocking one, as in the programs the issue is about (a polled queue, as in
/// `cross_thread`, is not what a worker pool uses): its wake-ups are part of every subject's
/// time, and `channel_u64` measures them alone.
pub struct Pipeline {
    pub shape: Shape,
    pub depth: usize,
}

impl Workload for Pipeline {
    fn name(&self) -> String {
        names::pipeline(self.shape.name(), self.depth)
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        b.iter_custom(|iters| {
            gated(|| {
                self.run(
                    iters,
                    || {
                        let mut item = subject.take();
                        black_box(&mut *item);
                        subject.send(item)
                    },
                    |sent| subject.give_sent(sent),
                )
            })
        });
    }
}

impl Pipeline {
    /// The baseline of the throughput target: the same pipeline carrying a bare `u64`
    /// (no pool, nothing to create or give back), so that a subject's time over this one is
    /// what pooling costs on top of the channel.
    pub fn measure_bare(&self, b: &mut Bencher<'_>) {
        b.iter_custom(|iters| {
            gated(|| {
                self.run(
                    iters,
                    || black_box(1u64),
                    |n| {
                        black_box(n);
                    },
                )
            })
        });
    }

    /// One run: a warm-up (counted in the census), then `iters` elements timed. `make` checks
    /// an element out and turns it into what is sent; `finish` gives it back.
    fn run<M: Send>(
        &self,
        iters: u64,
        make: impl Fn() -> M + Sync,
        finish: impl Fn(M) + Sync,
    ) -> Duration {
        let shape = self.shape;
        let (producers, middles, consumers) =
            (shape.producers(), shape.middles(), shape.consumers());
        let channels = if middles > 0 { 2 } else { 1 };
        let threads = producers + middles + consumers;
        // Several times what the pipeline can hold, so that every channel fills.
        let warm_up = (8 * (channels * self.depth + threads)).div_ceil(producers) as u64;
        let per_producer = iters.div_ceil(producers as u64);
        let carried = (warm_up + per_producer) * producers as u64;

        let (first_tx, first_rx) = bounded::<Message<M>>(self.depth);
        let (second_tx, second_rx) = bounded::<Message<M>>(self.depth);
        // The channel the consumers read: the second where there are middles.
        let last_rx = if middles > 0 { &second_rx } else { &first_rx };
        let first_stage = if middles > 0 { middles } else { consumers };
        let (producer_markers, first_markers_in) = markers(producers, first_stage);
        let (middle_markers, second_markers_in) = markers(middles.max(1), consumers);
        let consumer_markers = if middles > 0 {
            second_markers_in
        } else {
            first_markers_in
        };
        let barrier = Barrier::new(threads);
        let (make, finish, barrier) = (&make, &finish, &barrier);

        let produce = |tx: Sender<Message<M>>| {
            move || {
                let phase = |elements: u64, census: bool| {
                    for _ in 0..elements {
                        if census {
                            count(true);
                        }
                        tx.send(Some(make())).expect("pipeline: receivers gone");
                    }
                    for _ in 0..producer_markers {
                        tx.send(None).expect("pipeline: receivers gone");
                    }
                };
                phase(warm_up, true);
                barrier.wait();
                let start = Instant::now();
                phase(per_producer, false);
                start
            }
        };
        let pass_on = |rx: Receiver<Message<M>>, tx: Sender<Message<M>>| {
            move || {
                let phase = || {
                    let mut ends = 0;
                    while ends < first_markers_in {
                        match rx.recv().expect("pipeline: senders gone") {
                            Some(message) => {
                                tx.send(Some(message)).expect("pipeline: receivers gone");
                            }
                            None => ends += 1,
                        }
                    }
                    for _ in 0..middle_markers {
                        tx.send(None).expect("pipeline: receivers gone");
                    }
                };
                phase();
                barrier.wait();
                phase();
            }
        };
        let consume = |rx: Receiver<Message<M>>| {
            move || {
                let phase = |census: bool| {
                    let mut ends = 0;
                    while ends < consumer_markers {
                        match rx.recv().expect("pipeline: senders gone") {
                            Some(message) => {
                                finish(message);
                                if census {
                                    count(false);
                                }
                            }
                            None => ends += 1,
                        }
                    }
                };
                phase(true);
                barrier.wait();
                phase(false);
                Instant::now()
            }
        };

        let (starts, ends): (Vec<Instant>, Vec<Instant>) = std::thread::scope(|scope| {
            let mut core = 0..;
            let mut next_core = || core.next().expect("unbounded");
            let producers: Vec<_> = (0..producers)
                .map(|_| spawn_pinned(scope, next_core(), produce(first_tx.clone())))
                .collect();
            let middles: Vec<_> = (0..middles)
                .map(|_| {
                    let stage = pass_on(first_rx.clone(), second_tx.clone());
                    spawn_pinned(scope, next_core(), stage)
                })
                .collect();
            let consumers: Vec<_> = (0..consumers)
                .map(|_| spawn_pinned(scope, next_core(), consume(last_rx.clone())))
                .collect();
            let starts = producers.into_iter().map(|h| h.join().unwrap()).collect();
            for middle in middles {
                middle.join().unwrap();
            }
            let ends = consumers.into_iter().map(|h| h.join().unwrap()).collect();
            (starts, ends)
        });
        RUNS.fetch_add(1, Relaxed);
        ELEMENTS.fetch_add(carried, Relaxed);
        let start = starts.into_iter().min().expect("a producer");
        let end = ends.into_iter().max().expect("a consumer");
        // Scale to exactly `iters` elements (the producers carried `per_producer` each).
        (end - start).mul_f64(iters as f64 / (per_producer * producers as u64) as f64)
    }
}
