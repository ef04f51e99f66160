//! The sequence window: no panic on any (boot, seq) stream; verdicts agree with a set of
//! everything seen; storage round-trips.
#![no_main]
use gridsentry_sensors::seq::{SeqWindow, Verdict, WINDOW};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let mut w: Option<SeqWindow> = None;
    let mut model: Option<(u32, u32, BTreeSet<u32>)> = None;
    for op in data.chunks_exact(5) {
        let boot = u32::from(op[0] % 3);
        // Mostly small steps around a moving point, sometimes anywhere.
        let raw = u32::from_le_bytes([op[1], op[2], op[3], op[4]]);
        let seq = if op[0] & 0x80 == 0 { raw % 4096 } else { raw };
        let expected = match &mut model {
            Some((b, h, seen)) if *b == boot && seq <= *h => {
                if *h - seq >= WINDOW {
                    Verdict::TooOld
                } else if seen.insert(seq) {
                    Verdict::OutOfOrder
                } else {
                    Verdict::Repeat
                }
            }
            Some((b, h, seen)) if *b == boot => {
                *h = seq;
                seen.insert(seq);
                Verdict::New
            }
            _ => {
                model = Some((boot, seq, BTreeSet::from([seq])));
                Verdict::New
            }
        };
        let got = match &mut w {
            Some(w) => w.accept(boot, seq),
            None => {
                w = Some(SeqWindow::new(boot, seq));
                Verdict::New
            }
        };
        assert_eq!(got, expected, "boot {boot} seq {seq}");
        let win = w.as_ref().unwrap();
        let (b, h, bits) = win.parts();
        assert_eq!(&SeqWindow::from_parts(b, h, Some(&bits)), win);
        assert_eq!(SeqWindow::from_parts(b, h, Some(&bits[..7])).check(b, h), Verdict::Repeat);
    }
});
