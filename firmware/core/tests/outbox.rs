//! The outbox: order, numbering, wrap-around, drop counting, resend after a disconnect,
//! acknowledgements out of order (property tests against a plain model).

use gridsentry_firmware_core::outbox::Outbox;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Push,
    /// A report interval ends (the board calls it once per interval).
    IntervalPassed,
    Send,
    /// In order, as MQTT 3.1.1 brokers do.
    AckOldestInFlight,
    /// Out of order (a broker that does not follow §4.6).
    AckNewestInFlight,
    AckUnknown,
    Disconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Push),
        2 => Just(Op::IntervalPassed),
        3 => Just(Op::Send),
        2 => Just(Op::AckOldestInFlight),
        1 => Just(Op::AckNewestInFlight),
        1 => Just(Op::AckUnknown),
        1 => Just(Op::Disconnect),
    ]
}

#[derive(Debug, Clone, Copy)]
struct M {
    seq: u32,
    historical: bool,
    in_flight: bool,
    done: bool,
}

/// The model: every reading still holding a slot, oldest first. A reading acknowledged out of
/// order holds its slot until all older ones are gone.
type Model = VecDeque<M>;

fn pop_done(m: &mut Model) {
    while m.front().is_some_and(|e| e.done) {
        m.pop_front();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_ring_behaves_like_a_bounded_fifo(ops in proptest::collection::vec(op(), 0..200)) {
        const N: usize = 8;
        let mut o: Outbox<u32, N> = Outbox::new();
        let mut model: Model = VecDeque::new();
        let (mut next_seq, mut dropped) = (0u32, 0u32);
        for op in ops {
            match op {
                Op::Push => {
                    if model.len() == N {
                        model.pop_front();
                        pop_done(&mut model);
                        dropped += 1;
                    }
                    model.push_back(M { seq: next_seq, historical: false, in_flight: false, done: false });
                    prop_assert_eq!(o.push(next_seq * 10), next_seq, "the ring numbers readings from 0");
                    next_seq += 1;
                }
                Op::Send => {
                    let want = model.iter_mut().find(|e| !e.in_flight && !e.done).map(|e| {
                        e.in_flight = true;
                        (e.seq, e.historical)
                    });
                    let got = o.next_to_send().map(|e| {
                        assert_eq!(*e.item, e.seq * 10, "item travels with its seq");
                        (e.seq, e.historical)
                    });
                    prop_assert_eq!(got, want);
                }
                Op::AckOldestInFlight | Op::AckNewestInFlight => {
                    let mut flying = model.iter_mut().filter(|e| e.in_flight && !e.done);
                    let e = if matches!(op, Op::AckOldestInFlight) { flying.next() } else { flying.last() };
                    if let Some(e) = e {
                        e.done = true;
                        let seq = e.seq;
                        pop_done(&mut model);
                        prop_assert!(o.acked(seq));
                        prop_assert!(!o.acked(seq), "a duplicate PUBACK finds nothing");
                    }
                }
                Op::AckUnknown => prop_assert!(!o.acked(next_seq + 1000)),
                Op::IntervalPassed => {
                    for e in model.iter_mut().filter(|e| !e.in_flight && !e.done) {
                        e.historical = true;
                    }
                    o.interval_passed();
                }
                Op::Disconnect => {
                    for e in model.iter_mut() {
                        e.in_flight = false;
                    }
                    o.disconnected();
                }
            }
            prop_assert_eq!(o.len(), model.iter().filter(|e| !e.done).count());
            prop_assert_eq!(o.is_empty(), model.is_empty());
            prop_assert!(o.len() <= N);
        }
        prop_assert_eq!(o.take_dropped(), dropped);
        prop_assert_eq!(o.take_dropped(), 0, "the count restarts after it is reported");
        // What is left goes out oldest first after a reconnect an interval later, all flagged
        // historical.
        o.disconnected();
        o.interval_passed();
        let mut left = Vec::new();
        while let Some(e) = o.next_to_send() {
            prop_assert!(e.historical);
            left.push(e.seq);
        }
        let want: Vec<u32> = model.iter().filter(|e| !e.done).map(|e| e.seq).collect();
        prop_assert_eq!(left, want);
    }
}

#[test]
fn an_hour_offline_keeps_the_newest_hour_and_counts_the_rest() {
    let mut o: Outbox<[u8; 20], 3600> = Outbox::new();
    for seq in 0..5000u32 {
        o.interval_passed();
        assert_eq!(o.push([seq as u8; 20]), seq);
    }
    assert_eq!((o.len(), o.take_dropped()), (3600, 1400));
    let first = o.next_to_send().unwrap();
    assert_eq!((first.seq, first.historical), (1400, true));
}

#[test]
fn a_reading_is_historical_only_once_it_waited_past_its_interval() {
    let mut o: Outbox<u8, 4> = Outbox::new();
    // Measured before the first CONNACK after boot, sent within its interval: live.
    o.push(0);
    let e = o.next_to_send().unwrap();
    assert_eq!((e.seq, e.historical), (0, false));
    // Cut off and resent at once (a reconnect within the interval): still live.
    o.disconnected();
    assert!(!o.next_to_send().unwrap().historical);
    // Cut off, and an interval passes before it goes again: backfill.
    o.disconnected();
    o.interval_passed();
    let e = o.next_to_send().unwrap();
    assert_eq!((e.seq, e.historical), (0, true));
    // A reading in flight when the interval ends was sent live; it stays so.
    o.push(1);
    assert!(!o.next_to_send().unwrap().historical);
    o.interval_passed();
    assert!(o.acked(0) && o.acked(1));
    assert!(o.is_empty());
}

#[test]
fn an_acknowledgement_out_of_order_frees_its_slot_once_the_older_ones_go() {
    let mut o: Outbox<u8, 4> = Outbox::new();
    for _ in 0..3 {
        o.push(0);
        o.next_to_send().unwrap();
    }
    assert!(o.acked(2));
    assert!(o.acked(1));
    assert_eq!(o.len(), 1);
    assert!(o.acked(0));
    assert!(o.is_empty());
    assert_eq!(o.push(0), 3, "numbering goes on");
}

#[test]
fn a_noise_record_slot_is_20_bytes() {
    use gridsentry_firmware_core::noise::NoiseRecord;
    let per_slot = (size_of::<Outbox<NoiseRecord, 3600>>() - size_of::<Outbox<NoiseRecord, 1>>()) / 3599;
    assert_eq!(per_slot, 20);
}
