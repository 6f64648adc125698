//! The global shard: idle elements that overflowed a thread's list, shared by all threads.

#[cfg(not(loom))]
use crossbeam_channel::{Receiver, Sender};

use crate::slow_path::GIVER_BATCH;

/// Idle elements moved to the global shard together.
pub(crate) struct Batch<T> {
    /// Oldest first, as they sat in the thread's list.
    pub(crate) elements: Elements<T>,
    /// In a pool with a weigher, each element's weight, in the same order; empty otherwise.
    pub(crate) weights: Vec<usize>,
    /// The pool's trim count when the batch was made; `trim()` closes batches that sat idle
    /// through a whole trim period (see `Shared::trim`).
    pub(crate) trims: u64,
}

/// The most elements a batch carries without an allocation: the batches of a thread that gives
/// back more than it takes, which cross to another thread one after another (a heap batch
/// would cost an allocation on the giver and a free on the taker for each).
const INLINE_ELEMENTS: usize = GIVER_BATCH;

/// The largest inline batch, in bytes. The channel stores its messages in blocks of a few
/// dozen, so a message is kept small; a batch of larger elements goes on the heap.
const INLINE_BYTES: usize = 256;

/// The elements of a [`Batch`], oldest first.
pub(crate) enum Elements<T> {
    /// The elements in the leading slots, every slot after them empty.
    Inline([Option<T>; INLINE_ELEMENTS]),
    Heap(Vec<T>),
}

impl<T> Elements<T> {
    /// Takes every element of `elements`, keeping their order.
    pub(crate) fn collect(elements: impl ExactSizeIterator<Item = T>) -> Self {
        let inline = size_of::<[Option<T>; INLINE_ELEMENTS]>() <= INLINE_BYTES;
        if !inline || elements.len() > INLINE_ELEMENTS {
            return Elements::Heap(elements.collect());
        }
        let mut slots = [const { None }; INLINE_ELEMENTS];
        for (slot, element) in slots.iter_mut().zip(elements) {
            *slot = Some(element);
        }
        Elements::Inline(slots)
    }

    /// How many elements there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Elements::Inline(slots) => slots.iter().filter(|slot| slot.is_some()).count(),
            Elements::Heap(elements) => elements.len(),
        }
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the newest element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        match self {
            Elements::Inline(slots) => slots.iter_mut().rev().find_map(Option::take),
            Elements::Heap(elements) => elements.pop(),
        }
    }

    /// Every element, oldest first.
    pub(crate) fn oldest_first(self) -> impl Iterator<Item = T> {
        let (slots, heap) = match self {
            Elements::Inline(slots) => (Some(slots), Vec::new()),
            Elements::Heap(elements) => (None, elements),
        };
        slots.into_iter().flatten().flatten().chain(heap)
    }

    /// Moves every element to the end of `to`, oldest first.
    pub(crate) fn move_into(self, to: &mut Vec<T>) {
        match self {
            Elements::Inline(slots) => to.extend(slots.into_iter().flatten()),
            Elements::Heap(mut elements) => to.append(&mut elements),
        }
    }
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
#[cfg(not(loom))]
pub(crate) struct GlobalShard<T> {
    sender: Sender<Batch<T>>,
    receiver: Receiver<Batch<T>>,
}

#[cfg(not(loom))]
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

/// The global shard as loom sees it: the same FIFO of batches behind a loom mutex, so that the
/// model orders every push and pop against the others and explores both outcomes of a spill
/// racing a refill (loom does not see into crossbeam's channel, and would take the two for
/// independent).
#[cfg(loom)]
pub(crate) struct GlobalShard<T> {
    batches: crate::sync::Mutex<std::collections::VecDeque<Batch<T>>>,
}

#[cfg(loom)]
impl<T> GlobalShard<T> {
    pub(crate) fn new() -> Self {
        GlobalShard {
            batches: crate::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    pub(crate) fn push(&self, batch: Batch<T>) {
        self.batches.lock().unwrap().push_back(batch);
    }

    pub(crate) fn pop(&self) -> Option<Batch<T>> {
        self.batches.lock().unwrap().pop_front()
    }

    pub(crate) fn batches(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::Elements;

    fn drained<T>(mut elements: Elements<T>) -> Vec<T> {
        let mut popped = Vec::new();
        while let Some(element) = elements.pop() {
            popped.push(element);
        }
        popped
    }

    #[test]
    fn a_few_small_elements_travel_inline_and_keep_their_order() {
        let elements = Elements::collect(vec![1u64, 2, 3].into_iter());
        assert!(matches!(elements, Elements::Inline(_)));
        assert_eq!(elements.len(), 3);
        let mut moved = vec![0];
        elements.move_into(&mut moved);
        assert_eq!(moved, [0, 1, 2, 3]);
        assert_eq!(
            drained(Elements::collect(vec![1u64, 2].into_iter())),
            [2, 1]
        );
    }

    #[test]
    fn many_or_large_elements_travel_on_the_heap() {
        let many = Elements::collect(0u32..5);
        assert!(matches!(many, Elements::Heap(_)));
        assert_eq!(many.len(), 5);
        let large = Elements::collect(std::iter::once([7u8; 100]));
        assert!(matches!(large, Elements::Heap(_)));
        let mut moved = Vec::new();
        large.move_into(&mut moved);
        assert_eq!(moved, [[7u8; 100]]);
        let empty = Elements::<u64>::collect(Vec::new().into_iter());
        assert!(empty.is_empty());
        assert_eq!(drained(empty), Vec::<u64>::new());
    }
}
