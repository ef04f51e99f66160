//! Store and forward: a fixed-capacity ring of readings waiting for the broker's PUBACK.
//!
//! A device must keep measuring while the network or broker is gone, and must not reboot because
//! of it. Every reading goes through here: it is sent live when the session is up, and stays
//! until acknowledged. While the broker is unreachable the ring fills; after reconnecting it
//! sends oldest first. What waited (queued while offline, or sent but not acknowledged before the
//! connection dropped) goes out flagged `historical`, so the daemon treats it as backfill. When
//! the ring is full the OLDEST entry is dropped and counted; the count goes into the next status
//! message ([`Outbox::take_dropped`]), so the gap is visible upstream as well as in the sequence
//! numbers.
//!
//! `T` is the stored form of a reading: small and `Clone` (a noise box keeps an hour of 1 s
//! reports, so it stores compact records and encodes them to the wire format when sending).

use heapless::Deque;

/// One waiting reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    /// The reading's per-boot sequence number.
    pub seq: u32,
    /// Send it flagged historical (it waited).
    pub historical: bool,
    /// Handed to the transport and not acknowledged yet.
    pub in_flight: bool,
    /// The reading.
    pub item: T,
}

/// The ring.
#[derive(Debug)]
pub struct Outbox<T, const N: usize> {
    entries: Deque<Entry<T>, N>,
    dropped: u32,
}

impl<T: Clone, const N: usize> Default for Outbox<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone, const N: usize> Outbox<T, N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Outbox { entries: Deque::new(), dropped: 0 }
    }

    /// Queues a reading; `online` says whether it can go out live. When full, the oldest entry
    /// is dropped (even one in flight: its PUBACK will find nothing) and counted.
    pub fn push(&mut self, seq: u32, item: T, online: bool) {
        if self.entries.is_full() {
            self.entries.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        let entry = Entry { seq, historical: !online, in_flight: false, item };
        // Cannot fail: there is room now.
        let _ = self.entries.push_back(entry);
    }

    /// The oldest entry not yet in flight, now marked in flight: send it.
    pub fn next_to_send(&mut self) -> Option<&Entry<T>> {
        let e = self.entries.iter_mut().find(|e| !e.in_flight)?;
        e.in_flight = true;
        Some(e)
    }

    /// The broker acknowledged `seq`: forget it. False if it is not here (dropped meanwhile, or
    /// a duplicate PUBACK).
    pub fn acked(&mut self, seq: u32) -> bool {
        // PUBACKs come in order on one connection: the front is the usual case.
        if self.entries.front().is_some_and(|e| e.seq == seq && e.in_flight) {
            self.entries.pop_front();
            return true;
        }
        let Some(at) = self.entries.iter().position(|e| e.seq == seq && e.in_flight) else {
            return false;
        };
        // Rotate the acknowledged entry out, keeping the others' order.
        let n = self.entries.len();
        for i in 0..n {
            let e = self.entries.pop_front().expect("n entries");
            if i != at {
                let _ = self.entries.push_back(e);
            }
        }
        true
    }

    /// The connection dropped: everything waiting is resent after reconnecting, oldest first,
    /// flagged historical.
    pub fn disconnected(&mut self) {
        for e in self.entries.iter_mut() {
            e.in_flight = false;
            e.historical = true;
        }
    }

    /// `seq` was taken by [`Outbox::next_to_send`] but could not be sent now: offer it again.
    pub fn disconnected_one(&mut self, seq: u32) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.seq == seq) {
            e.in_flight = false;
        }
    }

    /// Readings dropped since the last call (for the status message).
    pub fn take_dropped(&mut self) -> u32 {
        core::mem::take(&mut self.dropped)
    }

    /// Entries waiting (in flight or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Capacity.
    pub const fn capacity(&self) -> usize {
        N
    }
}
