//! The global shard: idle elements that overflowed a thread's list, shared by all threads.

use crossbeam_channel::{Receiver, Sender};

/// The most batches the global shard's channel preallocates room for.
///
/// A bounded channel allocates all its slots up front, so a huge `pool_size` must not size it
/// one-to-one. Spilled batches hold half a thread's list, so in practice the channel holds far
/// fewer batches than this; if it ever fills, the batch that does not fit is closed and its
/// budget given back (counted as `evicted`).
const MAX_BATCHES: usize = 4096;

/// Idle elements moved to the global shard together.
pub(crate) struct Batch<T> {
    /// Oldest first, as they sat in the thread's list.
    pub(crate) elements: Vec<T>,
    /// The pool generation when the batch was made; `trim()` closes batches idle for a whole
    /// generation (see [`crate::generation`]).
    pub(crate) generation: u64,
}

/// A bounded `crossbeam-channel` of element batches.
///
/// Elements move between a thread's list and this shard a batch at a time, so the channel's
/// synchronisation is paid once per batch, not once per element. Every element in here carries
/// one unit of the pool's budget (see [`crate::budget`]).
pub(crate) struct GlobalShard<T> {
    sender: Sender<Batch<T>>,
    receiver: Receiver<Batch<T>>,
}

impl<T> GlobalShard<T> {
    /// An empty shard for a pool of `pool_size`.
    pub(crate) fn new(pool_size: usize) -> Self {
        // Each batch holds at least one element and one unit of budget, so `pool_size`
        // batches can never be exceeded; the cap only limits the preallocation.
        let (sender, receiver) = crossbeam_channel::bounded(pool_size.clamp(1, MAX_BATCHES));
        GlobalShard { sender, receiver }
    }

    /// Adds a batch; gives it back if the channel is full.
    pub(crate) fn push(&self, batch: Batch<T>) -> Result<(), Batch<T>> {
        // The shard owns both ends, so the only possible failure is a full channel.
        self.sender.try_send(batch).map_err(|e| e.into_inner())
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
