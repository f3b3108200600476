//! How many calls travel together in one job.
//!
//! Sized inputs start from CPython's rule, `ceil(n / (4 × workers))`: few enough
//! chunks that per-job overhead vanishes, enough that every worker gets several
//! and a slow chunk does not hold up the end. Unsized (streaming) inputs start
//! at one call per job and adapt: a chunk that came back quickly doubles the
//! next, a slow one halves it.

use std::time::Duration;

/// CPython's default chunk size for `n` items over `workers` workers.
pub(crate) fn default_chunksize(n: usize, workers: usize) -> usize {
    n.div_ceil(4 * workers.max(1)).clamp(1, MAX_SIZED)
}

/// Largest default chunk of a sized input: beyond this, per-chunk cost is already
/// negligible and multi-megabyte buffers only add page faults and latency.
const MAX_SIZED: usize = 1 << 16;

/// Chunk sizes for a stream whose length is unknown.
#[derive(Clone, Debug)]
pub(crate) struct Adaptive {
    size: usize,
    fixed: bool,
}

/// A chunk that takes less than this to come back is too small to be worth its round trip.
const FAST: Duration = Duration::from_millis(2);
/// One that takes more than this delays results; make the next smaller.
const SLOW: Duration = Duration::from_millis(50);
const MAX: usize = 4096;

impl Adaptive {
    /// `chunksize` given by the caller: always that. Otherwise from the size hint
    /// when exact, else start at one and adapt.
    pub(crate) fn new(chunksize: Option<usize>, hint: (usize, Option<usize>), workers: usize) -> Adaptive {
        match (chunksize, hint) {
            (Some(n), _) => Adaptive { size: n.max(1), fixed: true },
            (None, (lo, Some(hi))) if lo == hi => Adaptive { size: default_chunksize(lo, workers), fixed: true },
            _ => Adaptive { size: 1, fixed: false },
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Learns from a chunk of `items` that took `elapsed` from dispatch to result.
    pub(crate) fn observe(&mut self, items: usize, elapsed: Duration) {
        if self.fixed || items < self.size {
            return;
        }
        if elapsed < FAST {
            self.size = (self.size * 2).min(MAX);
        } else if elapsed > SLOW {
            self.size = (self.size / 2).max(1);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sized_inputs_use_cpythons_rule() {
        assert_eq!(default_chunksize(200_000, 2), 25_000);
        assert_eq!(default_chunksize(10, 4), 1);
        assert_eq!(default_chunksize(0, 4), 1);
    }

    #[test]
    fn huge_sized_inputs_are_capped() {
        assert_eq!(default_chunksize(10_000_000, 2), 1 << 16);
    }

    #[test]
    fn unsized_inputs_start_at_one_and_grow_while_chunks_are_fast() {
        let mut a = Adaptive::new(None, (0, None), 2);
        assert_eq!(a.size(), 1);
        a.observe(1, Duration::from_micros(100));
        a.observe(2, Duration::from_micros(100));
        assert_eq!(a.size(), 4);
        a.observe(4, Duration::from_millis(80));
        assert_eq!(a.size(), 2);
    }

    #[test]
    fn a_given_chunksize_is_kept() {
        let mut a = Adaptive::new(Some(7), (0, None), 2);
        a.observe(7, Duration::from_micros(1));
        assert_eq!(a.size(), 7);
    }
}
