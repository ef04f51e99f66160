//! Store and forward: a fixed-capacity ring of readings waiting for the broker's PUBACK.
//!
//! A device must keep measuring while the network or broker is gone, and must not reboot because
//! of it. Every reading goes through here: it is sent live when the session is up, and stays
//! until acknowledged. While the broker is unreachable the ring fills; after reconnecting it
//! sends oldest first. A reading goes out flagged `historical` (backfill, which pages nobody
//! until a live reading confirms it) only if it waited unsent past its report interval: the
//! board calls [`Outbox::interval_passed`] once per interval. So the readings measured while a
//! device connects after boot, or reconnects within an interval, count as live. When
//! the ring is full the OLDEST reading is dropped and counted; the count goes into the next status
//! message ([`Outbox::take_dropped`]), so the gap is visible upstream as well as in the sequence
//! numbers.
//!
//! The ring numbers the readings itself (the per-boot sequence, from 0): slot `i` holds reading
//! `front + i`, so a slot is the reading and one state byte — 20 bytes for a noise record, 72 KB
//! for an hour of them instead of 86 KB with a stored sequence number. MQTT 3.1.1 brokers
//! acknowledge in order (§4.6), so an acknowledgement normally frees the front slot; one that
//! arrives out of order leaves its slot marked done until everything before it is done too.
//!
//! `T` is the stored form of a reading: small and `Clone` (a noise box keeps an hour of 1 s
//! reports, so it stores compact records and encodes them to the wire format when sending).

use heapless::Deque;

/// One waiting reading, as handed to the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a, T> {
    /// The reading's per-boot sequence number.
    pub seq: u32,
    /// Send it flagged historical (it waited).
    pub historical: bool,
    /// The reading.
    pub item: &'a T,
}

const HISTORICAL: u8 = 1;
const IN_FLIGHT: u8 = 2;
const DONE: u8 = 4;

#[derive(Debug)]
struct Slot<T> {
    item: T,
    state: u8,
}

/// The ring.
#[derive(Debug)]
pub struct Outbox<T, const N: usize> {
    slots: Deque<Slot<T>, N>,
    /// Sequence number of the front slot.
    front: u32,
    dropped: u32,
}

impl<T: Clone, const N: usize> Default for Outbox<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone, const N: usize> Outbox<T, N> {
    /// An empty ring; the first reading gets sequence number 0.
    pub const fn new() -> Self {
        Outbox { slots: Deque::new(), front: 0, dropped: 0 }
    }

    /// Queues a reading and returns its sequence number. When full, the oldest reading is
    /// dropped (even one in flight: its PUBACK will find nothing) and counted.
    pub fn push(&mut self, item: T) -> u32 {
        if self.slots.is_full() {
            self.slots.pop_front();
            self.front = self.front.wrapping_add(1);
            self.dropped = self.dropped.saturating_add(1);
            self.pop_done();
        }
        let seq = self.front.wrapping_add(self.slots.len() as u32);
        // Cannot fail: there is room now.
        let _ = self.slots.push_back(Slot { item, state: 0 });
        seq
    }

    /// A report interval is over: every reading still waiting to be sent has waited past its
    /// interval and goes out flagged historical.
    pub fn interval_passed(&mut self) {
        for s in self.slots.iter_mut().filter(|s| s.state & (IN_FLIGHT | DONE) == 0) {
            s.state |= HISTORICAL;
        }
    }

    fn pop_done(&mut self) {
        while self.slots.front().is_some_and(|s| s.state & DONE != 0) {
            self.slots.pop_front();
            self.front = self.front.wrapping_add(1);
        }
    }

    /// The newest reading and its sequence number (still queued; for a local log).
    pub fn newest(&self) -> Option<(u32, &T)> {
        let n = self.slots.len();
        let slot = self.slots.back()?;
        Some((self.front.wrapping_add(n as u32 - 1), &slot.item))
    }

    /// The oldest reading not yet in flight, now marked in flight: send it.
    pub fn next_to_send(&mut self) -> Option<Entry<'_, T>> {
        let front = self.front;
        let (i, slot) = self.slots.iter_mut().enumerate().find(|(_, s)| s.state & (IN_FLIGHT | DONE) == 0)?;
        slot.state |= IN_FLIGHT;
        Some(Entry {
            seq: front.wrapping_add(i as u32),
            historical: slot.state & HISTORICAL != 0,
            item: &slot.item,
        })
    }

    fn slot(&mut self, seq: u32) -> Option<&mut Slot<T>> {
        let i = seq.wrapping_sub(self.front) as usize;
        self.slots.iter_mut().nth(i)
    }

    /// The broker acknowledged `seq`: forget it. False if it is not in flight (dropped
    /// meanwhile, or a duplicate PUBACK).
    pub fn acked(&mut self, seq: u32) -> bool {
        let Some(slot) = self.slot(seq).filter(|s| s.state & (IN_FLIGHT | DONE) == IN_FLIGHT) else {
            return false;
        };
        slot.state |= DONE;
        self.pop_done();
        true
    }

    /// The connection dropped: everything not acknowledged is resent after reconnecting,
    /// oldest first (historical once it waited past an interval).
    pub fn disconnected(&mut self) {
        for s in self.slots.iter_mut() {
            s.state &= !IN_FLIGHT;
        }
    }

    /// `seq` was taken by [`Outbox::next_to_send`] but could not be sent now: offer it again.
    pub fn disconnected_one(&mut self, seq: u32) {
        if let Some(s) = self.slot(seq) {
            s.state &= !IN_FLIGHT;
        }
    }

    /// Readings dropped since the last call (for the status message).
    pub fn take_dropped(&mut self) -> u32 {
        core::mem::take(&mut self.dropped)
    }

    /// Readings waiting (in flight or not).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.state & DONE == 0).count()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        // The front slot is never done (done slots leave from the front at once).
        self.slots.is_empty()
    }

    /// Capacity.
    pub const fn capacity(&self) -> usize {
        N
    }
}
