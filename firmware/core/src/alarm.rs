//! The box's own alarm: buzzer and LED on when the 1 s LAeq stays above a limit, with
//! hysteresis. It runs in the measuring path, so it works whether or not the network is up.

/// When the alarm sounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmSettings {
    /// On after `hold_s` consecutive seconds with LAeq,1s above this, dB(A).
    pub on_db: f32,
    /// Off after `hold_s` consecutive seconds with LAeq,1s below this, dB(A).
    pub off_db: f32,
    /// Seconds a condition must hold.
    pub hold_s: u16,
}

impl Default for AlarmSettings {
    /// 70 dB(A) for 5 s on, below 67 dB(A) for 5 s off.
    fn default() -> Self {
        AlarmSettings { on_db: 70.0, off_db: 67.0, hold_s: 5 }
    }
}

/// The alarm's state.
#[derive(Debug, Clone)]
pub struct Alarm {
    settings: AlarmSettings,
    on: bool,
    run: u16,
}

impl Alarm {
    /// A silent alarm.
    pub fn new(settings: AlarmSettings) -> Self {
        Alarm { settings, on: false, run: 0 }
    }

    /// Takes one second's LAeq; returns whether the buzzer should sound.
    pub fn second(&mut self, laeq_db: f32) -> bool {
        let s = &self.settings;
        let toward = if self.on { laeq_db < s.off_db } else { laeq_db > s.on_db };
        self.run = if toward { self.run.saturating_add(1) } else { 0 };
        if self.run >= s.hold_s.max(1) {
            self.on = !self.on;
            self.run = 0;
        }
        self.on
    }

    /// Whether it sounds now.
    pub fn on(&self) -> bool {
        self.on
    }
}
