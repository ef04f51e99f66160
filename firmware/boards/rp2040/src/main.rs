//! The plaza noise box on a Raspberry Pi Pico W (RP2040, Cortex-M0+, no FPU: fixed-point meter).
//!
//! Wiring (INMP441 breakout on 3V3/GND):
//! - SCK (bit clock) → GP10, WS (word select) → GP11, SD (data) → GP12 with a 100 kΩ pull-down,
//!   L/R → GND (the microphone speaks in the left slot);
//! - buzzer (active, through an NPN transistor) → GP15; alarm LED (with 330 Ω) → GP14.
//!
//! PIO0 clocks the microphone at 48 kHz with 64 bit clocks per frame (the INMP441 needs 64) and
//! DMA brings 10 ms of frames at a time; the core meter turns them into levels, drives the buzzer
//! (the local alarm needs no network) and each second's report is stored in the one-hour outbox.
//! Wi-Fi (cyw43) and the MQTT session over embassy-net are the next step: see issue 4's notes.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_rp::bind_interrupts;
use embassy_rp::gpio::{Level, Output, Pull};
use embassy_rp::peripherals::{DMA_CH0, PIO0};
use embassy_rp::pio::program::pio_asm;
use embassy_rp::pio::{Config, Direction, FifoJoin, InterruptHandler, Pio, ShiftConfig, ShiftDirection};
use embassy_rp::pio_programs::clock_divider::calculate_pio_clock_divider;
use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::noise::{FixedChain, Mic};
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_sensors::Timestamp;
use panic_halt as _;
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => InterruptHandler<PIO0>;
    DMA_IRQ_0 => embassy_rp::dma::InterruptHandler<DMA_CH0>;
});

const RATE: u32 = 48_000;
/// 10 ms of stereo frames: two 32-bit words (left, right) per sample.
const WORDS: usize = 2 * 480;

/// Meter, alarm and one hour of 1 s reports.
static BOX: StaticCell<NoiseBox<FixedChain, 3600>> = StaticCell::new();

/// No clock yet without the network: time since boot.
fn since_boot() -> Timestamp {
    Timestamp::Unsynced(embassy_time::Instant::now().as_millis())
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let Pio { mut common, mut sm0, .. } = Pio::new(p.PIO0, Irqs);
    // I2S receiver and clock master, 32-bit slots: WS changes one bit clock before the MSB.
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
    let mut sd = common.make_pio_pin(p.PIN_12);
    sd.set_pull(Pull::Down);
    let sck = common.make_pio_pin(p.PIN_10);
    let ws = common.make_pio_pin(p.PIN_11);
    let mut cfg = Config::default();
    cfg.use_program(&program, &[&sck, &ws]);
    cfg.set_in_pins(&[&sd]);
    // Two instructions per bit clock, 64 bit clocks per frame.
    cfg.clock_divider = calculate_pio_clock_divider(RATE * 64 * 2);
    cfg.shift_in = ShiftConfig { threshold: 32, direction: ShiftDirection::Left, auto_fill: true };
    cfg.fifo_join = FifoJoin::RxOnly;
    sm0.set_config(&cfg);
    sm0.set_pin_dirs(Direction::In, &[&sd]);
    sm0.set_pin_dirs(Direction::Out, &[&sck, &ws]);
    sm0.set_enable(true);
    let mut dma = embassy_rp::dma::Channel::new(p.DMA_CH0, Irqs);

    let mut pins = Pins {
        buzzer: Output::new(p.PIN_15, Level::Low),
        led: Output::new(p.PIN_14, Level::Low),
        clock: since_boot,
    };
    let noise_box = BOX.init(NoiseBox::new(&Mic::INMP441, 0.0, AlarmSettings::default(), 1));
    let (mut words, mut samples) = ([0u32; WORDS], [0i32; WORDS / 2]);
    loop {
        sm0.rx().dma_pull(&mut dma, &mut words, false).await;
        // Left slot: 24 bits, MSB first, left-aligned in the 32-bit word.
        for (s, w) in samples.iter_mut().zip(words.chunks_exact(2)) {
            *s = (w[0] as i32) >> 8;
        }
        noise_box.samples(&samples, false, &mut pins);
    }
}
