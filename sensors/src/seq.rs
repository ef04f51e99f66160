//! Which (boot, sequence number) pairs of one device have been seen: a sliding window.
//!
//! Why a window and not "the highest so far": a gateway that interleaves live readings with
//! buffered ones, or a third-party device that retries out of order, sends sequence numbers
//! below the highest that were never seen. Counting those as duplicates loses data silently.
//! The window remembers the last [`WINDOW`] numbers below the highest as a bitmap (128 bytes),
//! so a real repeat is told from a late arrival. Further below than the window nothing is
//! remembered: such a number is taken as seen ([`Verdict::TooOld`]): in-order delivery is the
//! common case (a broker redelivering a backlog), where it is a repeat.
//!
//! A new boot id restarts the window. The same type marks what was applied (the pipeline) and
//! what was stored (the time-series stage).

/// How many sequence numbers below the highest are remembered.
pub const WINDOW: u32 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// What a sequence number is, given what was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Above the highest, or the first of its boot.
    New,
    /// Below the highest, inside the window, not seen before.
    OutOfOrder,
    /// Seen before.
    Repeat,
    /// Further below the highest than the window reaches: taken as seen.
    TooOld,
}

impl Verdict {
    /// True for numbers that are new to the window (`New`, `OutOfOrder`).
    pub const fn is_fresh(self) -> bool {
        matches!(self, Verdict::New | Verdict::OutOfOrder)
    }
}

/// The window of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqWindow {
    boot: u32,
    highest: u32,
    /// Bit `i` (word `i / 64`, bit `i % 64`) set: `highest - i` was seen. Bit 0 is `highest`.
    seen: [u64; WORDS],
}

impl SeqWindow {
    /// A window whose first number is `seq` of `boot`.
    pub fn new(boot: u32, seq: u32) -> SeqWindow {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        SeqWindow { boot, highest: seq, seen }
    }

    /// A window restored from [`SeqWindow::parts`]; without a bitmap (state written before
    /// windows existed) every number up to `highest` counts as seen.
    pub fn from_parts(boot: u32, highest: u32, bitmap: Option<&[u8]>) -> SeqWindow {
        let mut seen = [u64::MAX; WORDS];
        if let Some(b) = bitmap.filter(|b| b.len() == WORDS * 8) {
            for (w, chunk) in seen.iter_mut().zip(b.chunks_exact(8)) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                *w = u64::from_le_bytes(bytes);
            }
        }
        seen[0] |= 1;
        SeqWindow { boot, highest, seen }
    }

    /// `(boot, highest, bitmap)` for storage (bitmap little-endian words, 128 bytes).
    pub fn parts(&self) -> (u32, u32, [u8; WORDS * 8]) {
        let mut out = [0u8; WORDS * 8];
        for (chunk, w) in out.chunks_exact_mut(8).zip(self.seen) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        (self.boot, self.highest, out)
    }

    /// The boot id and highest sequence number seen.
    pub fn highest(&self) -> (u32, u32) {
        (self.boot, self.highest)
    }

    /// What `seq` of `boot` is, without recording it.
    pub fn check(&self, boot: u32, seq: u32) -> Verdict {
        if boot != self.boot || seq > self.highest {
            return Verdict::New;
        }
        let back = self.highest - seq;
        if back >= WINDOW {
            return Verdict::TooOld;
        }
        match self.bit(back) {
            true => Verdict::Repeat,
            false => Verdict::OutOfOrder,
        }
    }

    /// What `seq` of `boot` is; records it as seen.
    pub fn accept(&mut self, boot: u32, seq: u32) -> Verdict {
        let v = self.check(boot, seq);
        match v {
            Verdict::New if boot != self.boot => *self = SeqWindow::new(boot, seq),
            Verdict::New => {
                self.shift(seq - self.highest);
                self.highest = seq;
                self.seen[0] |= 1;
            }
            Verdict::OutOfOrder => {
                let back = self.highest - seq;
                self.seen[(back / 64) as usize] |= 1 << (back % 64);
            }
            Verdict::Repeat | Verdict::TooOld => {}
        }
        v
    }

    fn bit(&self, back: u32) -> bool {
        self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    /// Moves every bit `by` places towards older numbers (bits past the window fall off).
    fn shift(&mut self, by: u32) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        for i in (0..WORDS).rev() {
            let hi = i.checked_sub(words).map_or(0, |j| self.seen[j]);
            let lo = i.checked_sub(words + 1).map_or(0, |j| self.seen[j]);
            self.seen[i] = match bits {
                0 => hi,
                b => (hi << b) | (lo >> (64 - b)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_late_arrivals_and_the_edge_of_the_window() {
        let mut w = SeqWindow::new(1, 10);
        assert_eq!(w.accept(1, 10), Verdict::Repeat);
        assert_eq!(w.accept(1, 12), Verdict::New);
        assert_eq!(w.accept(1, 11), Verdict::OutOfOrder);
        assert_eq!(w.accept(1, 11), Verdict::Repeat);
        assert_eq!(w.accept(1, 9), Verdict::OutOfOrder, "never seen, though below the first");
        assert_eq!(w.accept(1, 12 + WINDOW), Verdict::New);
        assert_eq!(w.check(1, 13), Verdict::OutOfOrder, "last number inside the window");
        assert_eq!(w.check(1, 12), Verdict::TooOld);
        assert_eq!(w.accept(2, 0), Verdict::New, "a new boot starts afresh");
        assert_eq!(w.accept(2, 0), Verdict::Repeat);
    }

    #[test]
    fn parts_round_trip_and_old_state_counts_everything_below_as_seen() {
        let mut w = SeqWindow::new(3, 100);
        for s in [105, 101, 300, 250] {
            w.accept(3, s);
        }
        let (boot, highest, bits) = w.parts();
        assert_eq!(SeqWindow::from_parts(boot, highest, Some(&bits)), w);
        let old = SeqWindow::from_parts(3, 50, None);
        assert_eq!(old.check(3, 49), Verdict::Repeat);
        assert_eq!(old.check(3, 51), Verdict::New);
    }
}
