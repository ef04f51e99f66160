//! The plaza noise box on an ESP32-C3 (RV32IMC, no FPU: fixed-point meter), on Wi-Fi.
//!
//! Wiring (INMP441 breakout on 3V3/GND):
//! - SCK (bit clock) → GPIO2, WS (word select) → GPIO3, SD (data) → GPIO4, L/R → GND;
//! - buzzer (active, through an NPN transistor) → GPIO5; alarm LED (with 330 Ω) → GPIO10.
//!
//! The I2S peripheral is the clock master at 48 kHz, 32-bit slots (the INMP441 needs 64 bit
//! clocks per frame), mono; DMA streams the samples into a ring the audio loop drains 10 ms at a
//! time. The core meter turns them into levels, drives the buzzer (the local alarm needs no
//! network) and each report (1 s by default) goes into the one-hour outbox. esp-rtos schedules
//! the radio; esp-radio's Wi-Fi station feeds embassy-net, on which the link crate runs the MQTT
//! uplink and SNTP. Wi-Fi, broker, ids, microphone preset, calibration and alarm levels are set
//! at build time (`GRIDSENTRY_*`, see firmware/link/build.rs).
//!
//! Fleet updates arrive in the MQTT session (the link crate's `ota`, `ota.rs` here for the
//! slots). The audio loop feeds TIMG1's watchdog (8 s), except on a trial image that has not
//! proved itself within `GRIDSENTRY_OTA_TRIAL_S`: then the chip restarts, and after three such
//! boots the image sends the boot loader back to the previous one.
#![no_std]
#![no_main]

use core::sync::atomic::Ordering::Relaxed;
use embassy_executor::Spawner;
use embassy_net::Stack;
use embassy_time::Instant;
use embassy_time::{Duration, Timer};
use esp_hal::dma_rx_stream_buffer;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::i2s::master::{Channels, DataFormat, I2s, TdmConfig};
use esp_hal::rng::Rng;
use esp_hal::time::Rate;
use esp_hal::timer::timg::TimerGroup;
use gridsentry_board_esp32c3::ota::{self, EspChip};
use gridsentry_firmware_core::noise::FixedChain;
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_link::{self as link, settings, Buffers, Flags, Locked, Ota};
use panic_halt as _;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

/// 10 ms of mono 32-bit samples.
const SAMPLES: usize = 480;
/// Readings in flight to the broker at most.
const WINDOW: usize = 4;

type SharedBox = Locked<NoiseBox<FixedChain, 3600>>;

/// Meter, alarm and one hour of 1 s reports, shared by the audio loop and the uplink.
static BOX: StaticCell<SharedBox> = StaticCell::new();
static LINK: StaticCell<Uplink<WINDOW>> = StaticCell::new();
static BUFFERS: StaticCell<Buffers> = StaticCell::new();
static OTA: StaticCell<Ota<EspChip>> = StaticCell::new();
static FLAGS: Flags = Flags::new();

#[embassy_executor::task]
async fn mqtt_task(
    stack: Stack<'static>,
    noise: &'static SharedBox,
    uplink: &'static mut Uplink<WINDOW>,
    bufs: &'static mut Buffers,
    ota: &'static mut Ota<EspChip>,
) -> ! {
    link::uplink(stack, link::Servers::from_settings(), uplink, noise, bufs, ota).await
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    // The radio's heap: the boot loader's RAM (free once the app runs) plus 16 KB. esp-radio's
    // examples give Wi-Fi 72 KB with its default buffers; the box runs with fewer (lib.rs).
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 16 * 1024);
    let timg0 = TimerGroup::new(p.TIMG0);
    esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);
    let (mut watchdog, ota, slot) = ota::start_updates(p.FLASH, p.TIMG1, "esp32c3", &FLAGS);
    let ota = OTA.init(ota);

    let rng = Rng::new();
    let identity = link::identity(rng.random());
    let noise = BOX.init_with(|| Locked::new(link::noise_box()));

    let stack = gridsentry_board_esp32c3::start_wifi(spawner, p.WIFI, &rng);
    let uplink = LINK.init(
        link::uplink_for::<gridsentry_firmware_core::noise::NoiseRecord, WINDOW>(
            &identity,
            settings::VERSION,
        )
        .with_ota()
        .with_slot(slot),
    );
    spawner.spawn(mqtt_task(stack, noise, uplink, BUFFERS.init(Buffers::new()), ota).expect("one mqtt task"));

    let config = TdmConfig::new_tdm_philips()
        .with_sample_rate(Rate::from_hz(48_000))
        .with_data_format(DataFormat::Data32Channel32)
        .with_channels(Channels::MONO);
    let Ok(i2s) = I2s::new(p.I2S0, p.DMA_CH0, config) else { panic!("I2S configuration") };
    let rx = i2s.i2s_rx.with_bclk(p.GPIO2).with_ws(p.GPIO3).with_din(p.GPIO4).build();
    // 40 ms of samples in the DMA ring: the loop drains it every 5 ms at least.
    let Ok(mut transfer) = rx.read(dma_rx_stream_buffer!(4 * 4 * SAMPLES, 4 * SAMPLES)) else {
        panic!("I2S DMA")
    };
    let mut pins = Pins {
        buzzer: Output::new(p.GPIO5, Level::Low, OutputConfig::default()),
        led: Output::new(p.GPIO10, Level::Low, OutputConfig::default()),
        clock: link::now,
    };
    let (mut bytes, mut samples) = ([0u8; 4 * SAMPLES], [0i32; SAMPLES]);
    let mut fill = 0usize;
    let started = Instant::now();
    loop {
        // A trial image that has not proved itself in time lets the watchdog restart the chip.
        let overdue = started.elapsed() > Duration::from_secs(settings::OTA_TRIAL_S);
        if !(FLAGS.on_trial.load(Relaxed) && overdue) {
            watchdog.feed();
        }
        if transfer.available_bytes() == 0 {
            Timer::after(Duration::from_millis(5)).await;
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
        if noise.lock(|b| b.samples(&samples, &mut pins)) {
            link::READING.signal(());
            FLAGS.working.store(true, Relaxed);
        }
    }
}
