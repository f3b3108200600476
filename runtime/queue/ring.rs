//! The byte ring: records laid end to end in a circular buffer, and the
//! arithmetic of their positions.
//!
//! A position is a byte count since the queue was made (`u64`, never wraps in
//! practice); the byte it names is at `position % capacity`. Every record starts
//! at a multiple of 8 and the capacity is a multiple of 8, so a record's 8-byte
//! header word never straddles the end of the buffer; its payload may, and is
//! then copied in two pieces.
//!
//! ```text
//! inline record:  [len: u64 LE][payload: len bytes][padding to a multiple of 8]
//! spilled record: [SPILLED | len: u64 LE][offset in the spill area: u64 LE]
//! ```

/// Flag in a record's header word: the payload is in the spill area, not here.
pub(super) const SPILLED: u64 = 1 << 63;

/// Bytes of a spilled record in the ring.
pub(super) const SPILLED_RECORD: u64 = 16;

/// `n` rounded up to a multiple of 8 (`None` on overflow).
pub(super) fn pad8(n: u64) -> Option<u64> {
    n.checked_add(7).map(|v| v & !7)
}

/// Bytes an inline record of `len` payload bytes takes in the ring.
pub(super) fn inline_record(len: u64) -> Option<u64> {
    pad8(len)?.checked_add(8)
}

/// A record as its header says, checked against the bytes the ring holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// `len` payload bytes follow the header word in the ring.
    Inline { len: u64 },
    /// `len` payload bytes are in the spill area; the ring holds where.
    Spilled { len: u64 },
}

impl Record {
    /// Reads the header word `word` of the record at the head of a ring holding
    /// `used` bytes. A length that does not fit what the ring holds is an error
    /// (the shared memory is corrupt), never a read past the records.
    pub(super) fn parse(word: u64, used: u64) -> Result<(Record, u64), String> {
        if word & SPILLED != 0 {
            let len = word & !SPILLED;
            if used < SPILLED_RECORD {
                return Err(format!("a spilled record needs {SPILLED_RECORD} bytes but the ring holds {used}"));
            }
            return Ok((Record::Spilled { len }, SPILLED_RECORD));
        }
        match inline_record(word) {
            Some(size) if size <= used => Ok((Record::Inline { len: word }, size)),
            _ => Err(format!("a record claims {word} bytes but the ring holds {used}")),
        }
    }
}

/// A view of the ring's bytes.
#[derive(Debug)]
pub(super) struct Ring {
    base: *mut u8,
    cap: u64,
}

impl Ring {
    /// A view of the `cap` bytes at `base`.
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `cap` bytes for as long as
    /// the view is used, `cap` a non-zero multiple of 8 that fits in `usize`,
    /// and whoever calls [`write`](Self::write) must be the only one touching
    /// those bytes meanwhile (the queue's lock is held).
    pub(super) unsafe fn new(base: *mut u8, cap: u64) -> Ring {
        Ring { base, cap }
    }

    /// Splits `len` bytes from `pos` into (offset, first piece, second piece),
    /// or `None` when `len` exceeds the capacity.
    fn pieces(&self, pos: u64, len: usize) -> Option<(usize, usize, usize)> {
        if self.cap == 0 || len as u64 > self.cap {
            return None;
        }
        let at = (pos % self.cap) as usize;
        let first = len.min(self.cap as usize - at);
        Some((at, first, len - first))
    }

    /// Copies `bytes` into the ring from position `pos`, wrapping around the
    /// end. Returns false (and writes nothing) if `bytes` is longer than the ring.
    pub(super) fn write(&self, pos: u64, bytes: &[u8]) -> bool {
        let Some((at, first, second)) = self.pieces(pos, bytes.len()) else { return false };
        // SAFETY: `at + first <= cap` and `second <= at` (since
        // `first + second <= cap`), so both ranges lie inside the ring, valid for
        // writes as `new` requires; `bytes` is a distinct buffer (a local
        // encoding), so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.base, second);
        }
        true
    }

    /// Copies `out.len()` bytes from position `pos` into `out`, wrapping around
    /// the end. Returns false (and reads nothing) if `out` is longer than the ring.
    pub(super) fn read(&self, pos: u64, out: &mut [u8]) -> bool {
        let Some((at, first, second)) = self.pieces(pos, out.len()) else { return false };
        // SAFETY: as in `write`, both ranges lie inside the ring; `out` is a
        // local buffer, distinct from the shared memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.base, out.as_mut_ptr().add(first), second);
        }
        true
    }

    /// Writes a little-endian word at `pos`.
    pub(super) fn write_u64(&self, pos: u64, v: u64) -> bool {
        self.write(pos, &v.to_le_bytes())
    }

    /// Reads a little-endian word at `pos`.
    pub(super) fn read_u64(&self, pos: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(pos, &mut b).then(|| u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn ring(buf: &mut [u64]) -> Ring {
        // SAFETY: the buffer outlives the view in each test and nothing else touches it.
        unsafe { Ring::new(buf.as_mut_ptr().cast(), (buf.len() * 8) as u64) }
    }

    #[test]
    fn a_write_across_the_end_wraps_to_the_start_and_reads_back() {
        let mut buf = [0u64; 8]; // 64 bytes
        let r = ring(&mut buf);
        let data: Vec<u8> = (1..=20).collect();
        assert!(r.write(56, &data)); // 8 bytes at the end, 12 at the start
        let mut back = vec![0u8; 20];
        assert!(r.read(56 + 64 * 3, &mut back)); // positions are taken modulo the capacity
        assert_eq!(back, data);
        let raw: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&raw[56..], &data[..8]);
        assert_eq!(&raw[..12], &data[8..]);
    }

    #[test]
    fn a_write_longer_than_the_ring_is_refused_untouched() {
        let mut buf = [0u64; 2];
        let r = ring(&mut buf);
        assert!(!r.write(0, &[9u8; 17]));
        assert!(r.write(0, &[9u8; 16]));
        let mut out = [0u8; 17];
        assert!(!r.read(3, &mut out));
    }

    #[test]
    fn words_round_trip_at_every_aligned_position() {
        let mut buf = [0u64; 4];
        let r = ring(&mut buf);
        for pos in (0..64).step_by(8) {
            assert!(r.write_u64(pos, pos * 1000 + 7));
            assert_eq!(r.read_u64(pos), Some(pos * 1000 + 7));
        }
    }

    #[test]
    fn record_sizes_are_padded_to_eight() {
        assert_eq!(inline_record(0), Some(8));
        assert_eq!(inline_record(1), Some(16));
        assert_eq!(inline_record(8), Some(16));
        assert_eq!(inline_record(9), Some(24));
        assert_eq!(inline_record(u64::MAX), None);
    }

    #[test]
    fn a_header_claiming_more_than_the_ring_holds_is_an_error() {
        assert_eq!(Record::parse(5, 16), Ok((Record::Inline { len: 5 }, 16)));
        assert!(Record::parse(9, 16).is_err());
        assert!(Record::parse(u64::MAX >> 1, 1 << 20).is_err());
        assert!(Record::parse((u64::MAX >> 1) - 3, 1 << 20).is_err());
        assert_eq!(Record::parse(SPILLED | 100, 16), Ok((Record::Spilled { len: 100 }, 16)));
        assert!(Record::parse(SPILLED | 100, 8).is_err());
    }
}
