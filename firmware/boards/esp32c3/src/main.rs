//! The plaza noise box on an ESP32-C3 (RV32IMC, no FPU: fixed-point meter).
//!
//! Wiring (INMP441 breakout on 3V3/GND):
//! - SCK (bit clock) → GPIO2, WS (word select) → GPIO3, SD (data) → GPIO4, L/R → GND;
//! - buzzer (active, through an NPN transistor) → GPIO5; alarm LED (with 330 Ω) → GPIO10.
//!
//! The I2S peripheral is the clock master at 48 kHz, 32-bit slots (the INMP441 needs 64 bit
//! clocks per frame), mono; DMA streams the samples into a ring the loop drains 10 ms at a time.
//! The core meter turns them into levels, drives the buzzer (the local alarm needs no network)
//! and each second's report is stored in the one-hour outbox. Wi-Fi (esp-radio) and the MQTT
//! session over embassy-net are the next step: see issue 4's notes.
#![no_std]
#![no_main]

use esp_hal::dma_rx_stream_buffer;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::i2s::master::{Channels, DataFormat, I2s, TdmConfig};
use esp_hal::time::Rate;
use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::noise::{FixedChain, Mic};
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_sensors::Timestamp;
use panic_halt as _;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

/// 10 ms of mono 32-bit samples.
const SAMPLES: usize = 480;

/// Meter, alarm and one hour of 1 s reports.
static BOX: StaticCell<NoiseBox<FixedChain, 3600>> = StaticCell::new();

/// No clock yet without the network: time since boot.
fn since_boot() -> Timestamp {
    Timestamp::Unsynced(esp_hal::time::Instant::now().duration_since_epoch().as_millis())
}

#[esp_hal::main]
fn main() -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    let config = TdmConfig::new_tdm_philips()
        .with_sample_rate(Rate::from_hz(48_000))
        .with_data_format(DataFormat::Data32Channel32)
        .with_channels(Channels::MONO);
    let Ok(i2s) = I2s::new(p.I2S0, p.DMA_CH0, config) else { panic!("I2S configuration") };
    let rx = i2s.i2s_rx.with_bclk(p.GPIO2).with_ws(p.GPIO3).with_din(p.GPIO4).build();
    let Ok(mut transfer) = rx.read(dma_rx_stream_buffer!(8 * 4 * SAMPLES, 4 * SAMPLES)) else {
        panic!("I2S DMA")
    };
    let mut pins = Pins {
        buzzer: Output::new(p.GPIO5, Level::Low, OutputConfig::default()),
        led: Output::new(p.GPIO10, Level::Low, OutputConfig::default()),
        clock: since_boot,
    };
    let noise_box = BOX.init(NoiseBox::new(&Mic::INMP441, 0.0, AlarmSettings::default(), 1));
    let (mut bytes, mut samples) = ([0u8; 4 * SAMPLES], [0i32; SAMPLES]);
    let mut fill = 0usize;
    loop {
        if transfer.available_bytes() == 0 {
            continue;
        }
        fill += transfer.pop(&mut bytes[fill..]);
        if fill < bytes.len() {
            continue;
        }
        fill = 0;
        // 24 bits, MSB first, left-aligned in each little-endian 32-bit slot.
        for (s, w) in samples.iter_mut().zip(bytes.chunks_exact(4)) {
            *s = i32::from_le_bytes([w[0], w[1], w[2], w[3]]) >> 8;
        }
        noise_box.samples(&samples, false, &mut pins);
    }
}
