//! Frames held back instead of dropped (turmoil's `hold`): queued in the order they came,
//! then released in that order or thrown away. A held read is kept as it was read, its
//! virtio-net header included, so a segmentation-offload segment goes out whole, as it
//! would have.

use std::collections::VecDeque;
use std::time::Instant;

/// One read kept back, for port `dst`.
#[derive(Debug, Clone)]
pub struct Held {
    pub dst: usize,
    /// The virtio-net header and the frame.
    pub bytes: Vec<u8>,
    /// The MTU frames and wire bytes it stands for (vnet::wire_size).
    pub size: (u64, u64),
}

/// What a queue held, for the fault's effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldStats {
    /// MTU frames held, and their bytes.
    pub frames: u64,
    pub bytes: u64,
    /// When the first frame was held.
    pub first: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct HoldQueue {
    items: VecDeque<Held>,
    stats: HoldStats,
}

impl HoldQueue {
    pub fn push(&mut self, held: Held) {
        self.stats.frames += held.size.0;
        self.stats.bytes += held.size.1;
        self.stats.first.get_or_insert_with(Instant::now);
        self.items.push_back(held);
    }

    /// Everything held, oldest first; the queue is empty afterwards (its stats stay).
    pub fn take(&mut self) -> Vec<Held> {
        self.items.drain(..).collect()
    }

    pub fn stats(&self) -> HoldStats {
        self.stats
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_and_keeps_its_stats() {
        let mut q = HoldQueue::default();
        assert!(q.is_empty() && q.stats().first.is_none());
        for i in 0..3u8 {
            q.push(Held {
                dst: 1,
                bytes: vec![i],
                size: (2, 100),
            });
        }
        let out: Vec<u8> = q.take().into_iter().map(|h| h.bytes[0]).collect();
        assert_eq!(out, vec![0, 1, 2]);
        assert!(q.is_empty());
        assert_eq!((q.stats().frames, q.stats().bytes), (6, 300));
        assert!(q.stats().first.is_some());
    }
}
