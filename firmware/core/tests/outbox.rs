//! The outbox: order, wrap-around, drop counting, resend after a disconnect (property tests
//! against a plain model).

use gridsentry_firmware_core::outbox::Outbox;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Push { online: bool },
    Send,
    AckOldestInFlight,
    AckUnknown,
    Disconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|online| Op::Push { online }),
        3 => Just(Op::Send),
        2 => Just(Op::AckOldestInFlight),
        1 => Just(Op::AckUnknown),
        1 => Just(Op::Disconnect),
    ]
}

/// The model: (seq, historical, in_flight) in order.
type Model = VecDeque<(u32, bool, bool)>;

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
                Op::Push { online } => {
                    if model.len() == N {
                        model.pop_front();
                        dropped += 1;
                    }
                    model.push_back((next_seq, !online, false));
                    o.push(next_seq, next_seq * 10, online);
                    next_seq += 1;
                }
                Op::Send => {
                    let want = model.iter_mut().find(|e| !e.2).map(|e| { e.2 = true; (e.0, e.1) });
                    let got = o.next_to_send().map(|e| {
                        assert_eq!(e.item, e.seq * 10, "item travels with its seq");
                        (e.seq, e.historical)
                    });
                    prop_assert_eq!(got, want);
                }
                Op::AckOldestInFlight => {
                    if let Some(i) = model.iter().position(|e| e.2) {
                        let seq = model.remove(i).unwrap().0;
                        prop_assert!(o.acked(seq));
                    }
                }
                Op::AckUnknown => prop_assert!(!o.acked(next_seq + 1000)),
                Op::Disconnect => {
                    for e in model.iter_mut() {
                        e.1 = true;
                        e.2 = false;
                    }
                    o.disconnected();
                }
            }
            prop_assert_eq!(o.len(), model.len());
            prop_assert!(o.len() <= N);
        }
        prop_assert_eq!(o.take_dropped(), dropped);
        prop_assert_eq!(o.take_dropped(), 0, "the count restarts after it is reported");
        // What is left goes out oldest first after a reconnect, all flagged historical.
        o.disconnected();
        let mut left = Vec::new();
        while let Some(e) = o.next_to_send() {
            prop_assert!(e.historical);
            left.push(e.seq);
        }
        let want: Vec<u32> = model.iter().map(|e| e.0).collect();
        prop_assert_eq!(left, want);
    }
}

#[test]
fn an_hour_offline_keeps_the_newest_hour_and_counts_the_rest() {
    let mut o: Outbox<[u8; 20], 3600> = Outbox::new();
    for seq in 0..5000u32 {
        o.push(seq, [seq as u8; 20], false);
    }
    assert_eq!((o.len(), o.take_dropped()), (3600, 1400));
    let first = o.next_to_send().unwrap();
    assert_eq!((first.seq, first.historical), (1400, true));
}

#[test]
fn a_reading_sent_live_and_cut_off_is_resent_as_historical() {
    let mut o: Outbox<u8, 4> = Outbox::new();
    o.push(0, 0, true);
    let e = o.next_to_send().unwrap();
    assert!(!e.historical);
    o.disconnected();
    let e = o.next_to_send().unwrap();
    assert_eq!((e.seq, e.historical), (0, true));
    assert!(o.acked(0));
    assert!(o.is_empty());
}
