//! The global shard: idle elements that overflowed a thread's list, shared by all threads.

use crossbeam_channel::{Receiver, Sender};

/// Idle elements moved to the global shard together.
pub(crate) struct Batch<T> {
    /// Oldest first, as they sat in the thread's list.
    pub(crate) elements: Vec<T>,
    /// The pool's trim count when the batch was made; `trim()` closes batches that sat idle
    /// through a whole trim period (see [`crate::generation`]).
    pub(crate) trims: u64,
}

/// An unbounded `crossbeam-channel` of element batches.
///
/// Elements move between a thread's list and this shard a batch at a time, so the channel's
/// synchronisation is paid once per batch, not once per element. Every element in here carries
/// one unit of the pool's budget (see [`crate::budget`]), so the budget, not the channel,
/// bounds what the shard holds: at most `pool_size` batches of at least one element each.
/// Unbounded, the channel allocates its slots in small blocks as batches arrive (a bounded one
/// would preallocate a slot per possible batch), and a push never fails, so an element that
/// has a unit of budget always has a place.
pub(crate) struct GlobalShard<T> {
    sender: Sender<Batch<T>>,
    receiver: Receiver<Batch<T>>,
}

impl<T> GlobalShard<T> {
    /// An empty shard.
    pub(crate) fn new() -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        GlobalShard { sender, receiver }
    }

    /// Adds a batch.
    pub(crate) fn push(&self, batch: Batch<T>) {
        // The shard owns both ends, so the receiver outlives every send and an unbounded
        // channel has no other way to fail.
        if self.sender.send(batch).is_err() {
            unreachable!("the global shard's receiver lives as long as its sender");
        }
    }

    /// Takes the oldest batch, if any.
    pub(crate) fn pop(&self) -> Option<Batch<T>> {
        self.receiver.try_recv().ok()
    }

    /// The number of batches in the shard now.
    pub(crate) fn batches(&self) -> usize {
        self.receiver.len()
    }
}
