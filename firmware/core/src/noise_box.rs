//! The noise box's main loop without its pins: samples in, buzzer/LED and stored readings out.
//! A board implements [`Board`] for its outputs and feeds whatever its I2S driver delivers; the
//! bookkeeping (one report per second, the outbox, sequence numbers, the alarm) lives here once,
//! for the RP2040, the ESP32-C3 and the host board alike.

use crate::alarm::AlarmSettings;
use crate::noise::{Chain, Meter, Mic, NoiseRecord};
use crate::outbox::Outbox;
use embedded_hal::digital::{OutputPin, PinState};
use gridsentry_sensors::Timestamp;

/// What a board drives.
pub trait Board {
    /// Buzzer and alarm LED on or off.
    fn alarm(&mut self, on: bool);
    /// Now, as the device knows it: UTC once a clock is synchronised, else time since boot.
    fn now(&self) -> Timestamp;
}

/// The usual board: a buzzer and an alarm LED on two output pins (any HAL's embedded-hal
/// `OutputPin`), and a clock.
pub struct Pins<B, L, C> {
    /// Active buzzer (through a transistor).
    pub buzzer: B,
    /// Alarm LED.
    pub led: L,
    /// Now, as the device knows it.
    pub clock: C,
}

impl<B: OutputPin, L: OutputPin, C: Fn() -> Timestamp> Board for Pins<B, L, C> {
    fn alarm(&mut self, on: bool) {
        // The chips' GPIO writes cannot fail (their error type is `Infallible`).
        let _ = self.buzzer.set_state(PinState::from(on));
        let _ = self.led.set_state(PinState::from(on));
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

/// Meter, alarm and outbox of one noise box; `N` readings kept while the broker is away.
pub struct NoiseBox<C, const N: usize> {
    meter: Meter<C>,
    outbox: Outbox<NoiseRecord, N>,
    samples_per_report: u32,
    samples: u32,
    alarm: bool,
}

impl<C: Chain, const N: usize> NoiseBox<C, N> {
    /// A box for `mic`, reporting every `report_s` seconds (48 kHz samples).
    pub fn new(mic: &Mic, cal_offset_db: f32, alarm: AlarmSettings, report_s: u32) -> Self {
        NoiseBox {
            meter: Meter::new(mic, cal_offset_db, alarm),
            outbox: Outbox::new(),
            samples_per_report: report_s.max(1) * crate::noise::coeffs::FS,
            samples: 0,
            alarm: false,
        }
    }

    /// Takes samples; switches the alarm when it changes; stores a reading when a report
    /// interval completes (what is still unsent then has waited past its interval: historical).
    /// True when it stored a reading (the board wakes the uplink to send it).
    pub fn samples(&mut self, s: &[i32], board: &mut impl Board) -> bool {
        let mut stored = false;
        let mut rest = s;
        while !rest.is_empty() {
            let room = (self.samples_per_report - self.samples) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.meter.push(now);
            self.samples += now.len() as u32;
            rest = later;
            if self.samples == self.samples_per_report {
                self.samples = 0;
                let report = self.meter.report();
                self.outbox.interval_passed();
                self.outbox.push(NoiseRecord::new(board.now(), &report));
                stored = true;
            }
        }
        if self.meter.alarm() != self.alarm {
            self.alarm = !self.alarm;
            board.alarm(self.alarm);
        }
        stored
    }

    /// The readings waiting for the broker.
    pub fn outbox(&mut self) -> &mut Outbox<NoiseRecord, N> {
        &mut self.outbox
    }

    /// Whether the alarm sounds.
    pub fn alarm(&self) -> bool {
        self.alarm
    }
}
