//! The noise box loop: one stored reading per report interval with consecutive sequence
//! numbers and the board's time, the alarm switched on the board only when it changes.

mod support;

use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::noise::{FixedChain, Mic};
use gridsentry_firmware_core::noise_box::{Board, NoiseBox};
use gridsentry_sensors::{Body, Id, Timestamp};
use support::{dbfs_for, sine};

struct Pins {
    switched: Vec<bool>,
    t_ms: u64,
}

impl Board for Pins {
    fn alarm(&mut self, on: bool) {
        self.switched.push(on);
    }
    fn now(&self) -> Timestamp {
        Timestamp::Utc(self.t_ms)
    }
}

#[test]
fn one_reading_per_second_and_the_alarm_on_the_pins() {
    let mut b: NoiseBox<FixedChain, 16> =
        NoiseBox::new(&Mic::FLAT, 0.0, AlarmSettings { on_db: 70.0, off_db: 67.0, hold_s: 2 }, 1);
    let mut pins = Pins { switched: Vec::new(), t_ms: 1_764_072_000_000 };
    let loud = sine(1000.0, dbfs_for(80.0), 1.0);
    let quiet = sine(1000.0, dbfs_for(50.0), 1.0);
    for (i, s) in [&quiet, &loud, &loud, &loud, &quiet, &quiet, &quiet].iter().enumerate() {
        pins.t_ms += 1000;
        // Odd chunk sizes: intervals must not depend on how the driver slices the samples.
        for chunk in s.chunks(1000 + i * 7) {
            b.samples(chunk, &mut pins);
        }
    }
    assert_eq!(pins.switched, vec![true, false], "on after 2 loud seconds, off after 2 quiet ones");
    let o = b.outbox();
    assert_eq!(o.len(), 7);
    let mut seqs = Vec::new();
    while let Some(e) = o.next_to_send() {
        seqs.push(e.seq);
        let header = gridsentry_sensors::Header {
            site: Id::new("p").unwrap(),
            device: Id::new("d").unwrap(),
            boot_id: 1,
            seq: e.seq,
            time: Timestamp::Unsynced(0),
            historical: false,
        };
        let r = e.item.reading(header);
        let Body::Noise(n) = r.body else { panic!() };
        let want = if (1..4).contains(&e.seq) { 80.0 } else { 50.0 };
        assert!((n.laeq_db - want).abs() < 0.5 || e.seq == 4, "seq {}: {n:?}", e.seq);
        assert_eq!(r.header.time, Timestamp::Utc(1_764_072_000_000 + 1000 * (u64::from(e.seq) + 1)));
    }
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
}
