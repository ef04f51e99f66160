//! The microphone side of the RP2040 noise box, shared by the Wi-Fi build and the radio-less one
//! (`noise-box-rp2040-offline`, the build the emulator runs): the PIO program that is the I2S
//! clock master, the DMA that brings its words, and the loop that hands 10 ms of samples to the
//! meter. One copy, so what runs on the emulated chip is what runs on the pole.
//!
//! Wiring (INMP441 breakout on 3V3/GND): SCK (bit clock) → GP10, WS (word select) → GP11, SD
//! (data) → GP12 with a 100 kΩ pull-down, L/R → GND (the microphone speaks in the left slot);
//! buzzer (active, through an NPN transistor) → GP15; alarm LED (with 330 Ω) → GP14.
//!
//! PIO1 state machine 0 clocks the microphone at 48 kHz with 64 bit clocks per frame (the INMP441
//! needs 64). DMA channel 1 fills one 10 ms buffer while the meter works on the other (ping-pong):
//! the PIO's RX FIFO holds only 8 words (83 µs), far less than the meter needs for 10 ms of
//! samples, so the next transfer is started before the samples are processed. If the FIFO still
//! fills (the state machine stalls and the microphone's clock stops), the loop counts an overrun.

use embassy_rp::gpio::{Level, Output, Pull};
use embassy_rp::peripherals::{PIN_10, PIN_11, PIN_12, PIN_14, PIN_15, PIO1};
use embassy_rp::pio::program::pio_asm;
use embassy_rp::pio::{Common, Config, Direction, FifoJoin, ShiftConfig, ShiftDirection, StateMachine};
use embassy_rp::pio_programs::clock_divider::calculate_pio_clock_divider;
use embassy_rp::{dma, Peri};

/// Samples per second.
pub const RATE: u32 = 48_000;
/// 10 ms of samples.
pub const SAMPLES: usize = 480;
/// 10 ms of stereo frames: two 32-bit words (left, right) per sample.
const WORDS: usize = 2 * SAMPLES;

/// The alarm outputs.
pub struct AlarmPins {
    /// Active buzzer through a transistor (GP15).
    pub buzzer: Output<'static>,
    /// Alarm LED (GP14).
    pub led: Output<'static>,
}

impl AlarmPins {
    /// Both off.
    pub fn new(buzzer: Peri<'static, PIN_15>, led: Peri<'static, PIN_14>) -> Self {
        AlarmPins { buzzer: Output::new(buzzer, Level::Low), led: Output::new(led, Level::Low) }
    }
}

/// The INMP441 on PIO1 state machine 0 and a DMA channel.
pub struct Microphone {
    // Kept: dropping it would release the PIO block's instruction memory.
    _common: Common<'static, PIO1>,
    sm: StateMachine<'static, PIO1, 0>,
    dma: dma::Channel<'static>,
    overruns: u32,
}

impl Microphone {
    /// Loads the I2S program (the clocks start in `run`).
    pub fn new(
        mut common: Common<'static, PIO1>,
        mut sm: StateMachine<'static, PIO1, 0>,
        dma: dma::Channel<'static>,
        sck: Peri<'static, PIN_10>,
        ws: Peri<'static, PIN_11>,
        sd: Peri<'static, PIN_12>,
    ) -> Self {
        // I2S receiver and clock master, 32-bit slots. Side-set bit 0 is SCK, bit 1 is WS; two
        // instructions per bit clock, `in` on the falling edge (the microphone changes SD on a
        // falling edge, so each `in` reads the bit put out one edge earlier). WS changes at the
        // falling edge of the slot's last `in`; the microphone's MSB follows one bit clock later
        // (I2S), so the first `in` of a slot still reads the other slot's last bit and the 24 data
        // bits land in bits 30..7 of the word (see `sample`).
        let program = pio_asm!(
            ".side_set 2",
            "   set x, 30          side 0b01",
            "left:",
            "   in pins, 1         side 0b00",
            "   jmp x-- left       side 0b01",
            "   in pins, 1         side 0b10",
            "   set x, 30          side 0b11",
            "right:",
            "   in pins, 1         side 0b10",
            "   jmp x-- right      side 0b11",
            "   in pins, 1         side 0b00",
        );
        let program = common.load_program(&program.program);
        let mut sd = common.make_pio_pin(sd);
        sd.set_pull(Pull::Down);
        let sck = common.make_pio_pin(sck);
        let ws = common.make_pio_pin(ws);
        let mut cfg = Config::default();
        cfg.use_program(&program, &[&sck, &ws]);
        cfg.set_in_pins(&[&sd]);
        // Two instructions per bit clock, 64 bit clocks per frame.
        cfg.clock_divider = calculate_pio_clock_divider(RATE * 64 * 2);
        cfg.shift_in = ShiftConfig { threshold: 32, direction: ShiftDirection::Left, auto_fill: true };
        cfg.fifo_join = FifoJoin::RxOnly;
        sm.set_config(&cfg);
        sm.set_pin_dirs(Direction::In, &[&sd]);
        sm.set_pin_dirs(Direction::Out, &[&sck, &ws]);
        Microphone { _common: common, sm, dma, overruns: 0 }
    }

    /// Runs forever: calls `block` with every 10 ms of samples, in order, and the number of
    /// overruns so far (10 ms blocks during which the FIFO filled and samples were lost).
    pub async fn run(&mut self, mut block: impl FnMut(&[i32; SAMPLES], u32)) -> ! {
        let mut buffers = [[0u32; WORDS]; 2];
        let (first, second) = buffers.split_at_mut(1);
        let (mut ready, mut filling) = (&mut first[0], &mut second[0]);
        let mut samples = [0i32; SAMPLES];
        // The clocks start only now, with the buffers ready: zeroing them takes longer than the
        // FIFO's 83 µs (the emulator showed the stall).
        self.sm.set_enable(true);
        self.sm.rx().dma_pull(&mut self.dma, &mut ready[..], false).await;
        loop {
            // The next 10 ms arrive while this block is measured.
            let transfer = self.sm.rx().dma_pull(&mut self.dma, &mut filling[..], false);
            for (s, w) in samples.iter_mut().zip(ready.chunks_exact(2)) {
                *s = sample(w[0]);
            }
            block(&samples, self.overruns);
            transfer.await;
            if self.sm.rx().stalled() {
                self.overruns += 1;
            }
            core::mem::swap(&mut ready, &mut filling);
        }
    }
}

/// The left slot's 24-bit sample from its 32-bit word (bits 30..7, two's complement).
pub fn sample(word: u32) -> i32 {
    ((word << 1) as i32) >> 8
}
