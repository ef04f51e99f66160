//! The RP2040 noise box without its radio: the Wi-Fi build's microphone code, pins, meter, alarm
//! and outbox (`audio.rs`, the firmware core), with every report written to UART0 instead of the
//! broker. It runs on a plain Pico (no W) as a stand-alone noise alarm, and it is the image
//! `scripts/firmware-sim` runs on the emulated RP2040 (rp2040js has no CYW43 radio).
//!
//! UART0 TX on GP0, 921600 baud 8N1 (a line is ~70 bytes: 0.8 ms, well inside the 10 ms a DMA
//! buffer takes to fill). Lines:
//! - `boot noise-box-rp2040-offline VERSION SITE/DEVICE`
//! - `report seq=N laeq_cdb=X lafmax_cdb=Y overruns=Z` (levels in hundredths of a dB(A))
//! - `alarm on` / `alarm off`
#![no_std]
#![no_main]

use core::fmt::Write as _;
use embassy_executor::Spawner;
use embassy_rp::bind_interrupts;
use embassy_rp::peripherals::{DMA_CH1, PIO1};
use embassy_rp::pio::{InterruptHandler, Pio};
use embassy_rp::uart::{self, UartTx};
use gridsentry_board_rp2040::audio::{AlarmPins, Microphone};
use gridsentry_firmware_core::noise::FixedChain;
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_firmware_link::{self as link, settings};
use heapless::String;
use panic_halt as _;
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    PIO1_IRQ_0 => InterruptHandler<PIO1>;
    DMA_IRQ_0 => embassy_rp::dma::InterruptHandler<DMA_CH1>;
});

/// An hour of 1 s reports, as on the Wi-Fi build (here they are written out and dropped).
static BOX: StaticCell<NoiseBox<FixedChain, 3600>> = StaticCell::new();

/// Writes one line (longer ones are cut: the log must never stop the audio loop).
fn line(uart: &mut UartTx<'static, uart::Blocking>, args: core::fmt::Arguments) {
    let mut s: String<96> = String::new();
    let _ = s.write_fmt(args);
    let _ = uart.blocking_write(s.as_bytes());
    let _ = uart.blocking_write(b"\n");
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut config = uart::Config::default();
    config.baudrate = 921_600;
    let mut log = UartTx::new_blocking(p.UART0, p.PIN_0, config);
    line(
        &mut log,
        format_args!(
            "boot noise-box-rp2040-offline {} {}/{}",
            env!("CARGO_PKG_VERSION"),
            settings::SITE,
            settings::DEVICE
        ),
    );
    let noise = BOX.init_with(link::noise_box);
    let Pio { common, sm0, .. } = Pio::new(p.PIO1, Irqs);
    let dma = embassy_rp::dma::Channel::new(p.DMA_CH1, Irqs);
    let mut mic = Microphone::new(common, sm0, dma, p.PIN_10, p.PIN_11, p.PIN_12);
    let AlarmPins { buzzer, led } = AlarmPins::new(p.PIN_15, p.PIN_14);
    let mut pins = Pins { buzzer, led, clock: link::now };
    mic.run(|samples, overruns| {
        let alarm = noise.alarm();
        if noise.samples(samples, &mut pins) {
            while let Some(e) = noise.outbox().next_to_send() {
                let (seq, [laeq, lafmax, ..]) = (e.seq, e.item.levels_cdb());
                line(
                    &mut log,
                    format_args!("report seq={seq} laeq_cdb={laeq} lafmax_cdb={lafmax} overruns={overruns}"),
                );
                noise.outbox().acked(seq);
            }
        }
        if noise.alarm() != alarm {
            line(&mut log, format_args!("alarm {}", if noise.alarm() { "on" } else { "off" }));
        }
    })
    .await
}
