//! The plaza noise box on a Raspberry Pi Pico W (RP2040, Cortex-M0+, no FPU: fixed-point meter),
//! on Wi-Fi.
//!
//! Wiring: the microphone, buzzer and LED as in `audio.rs` (shared with the radio-less build);
//! - on the Pico W itself: the CYW43439 radio on GP23 (power), GP24 (data), GP25 (chip select),
//!   GP29 (clock), driven by PIO0 state machine 0 and DMA channel 0 (cyw43-pio).
//!
//! The audio loop (`audio.rs`) turns 10 ms blocks into levels, drives the buzzer (the local
//! alarm needs no network) and each report (1 s by default) goes into the
//! one-hour outbox. cyw43 joins the Wi-Fi network and feeds embassy-net, on which the link crate
//! runs the MQTT uplink and SNTP. Wi-Fi, broker, ids, microphone preset, calibration and alarm
//! levels are set at build time (`GRIDSENTRY_*`, see firmware/link/build.rs).
//!
//! It runs behind the boot loader (boards/rp2040-boot), which starts the watchdog: the audio
//! loop feeds it, except on a trial image that has not proved itself within
//! `GRIDSENTRY_OTA_TRIAL_S` — then the chip restarts and the boot loader goes back to the
//! previous image. Fleet updates arrive in the MQTT session (the link crate's `ota`).
#![no_std]
#![no_main]

mod nvram;

use core::sync::atomic::Ordering::Relaxed;
use cyw43::JoinOptions;
use cyw43_pio::{PioSpi, DEFAULT_CLOCK_DIVIDER};
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_rp::bind_interrupts;
use embassy_rp::clocks::RoscRng;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, DMA_CH1, PIO0, PIO1};
use embassy_rp::pio::{InterruptHandler, Pio};
use embassy_rp::watchdog::Watchdog;
use embassy_time::{Duration, Instant, Timer};
use gridsentry_board_rp2040::audio::{AlarmPins, Microphone};
use gridsentry_board_rp2040::ota::Updates;
use gridsentry_firmware_core::noise::{FixedChain, NoiseRecord};
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_firmware_core::ota::Updater;
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_link::{self as link, settings, Buffers, Flags, Locked, Ota};
use panic_halt as _;
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => InterruptHandler<PIO0>;
    PIO1_IRQ_0 => InterruptHandler<PIO1>;
    DMA_IRQ_0 => embassy_rp::dma::InterruptHandler<DMA_CH0>, embassy_rp::dma::InterruptHandler<DMA_CH1>;
});

/// Readings in flight to the broker at most.
const WINDOW: usize = 4;

type SharedBox = Locked<NoiseBox<FixedChain, 3600>>;
type Radio = cyw43::SpiBus<Output<'static>, PioSpi<'static, PIO0, 0>>;

/// Meter, alarm and one hour of 1 s reports, shared by the audio loop and the uplink.
static BOX: StaticCell<SharedBox> = StaticCell::new();
static CYW43: StaticCell<cyw43::State> = StaticCell::new();
static NET: StaticCell<StackResources<4>> = StaticCell::new();
static LINK: StaticCell<Uplink<WINDOW>> = StaticCell::new();
static BUFFERS: StaticCell<Buffers> = StaticCell::new();
static OTA: StaticCell<Ota<Updates>> = StaticCell::new();
static FLAGS: Flags = Flags::new();

#[embassy_executor::task]
async fn radio_task(runner: cyw43::Runner<'static, Radio>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

/// Keeps the station joined: rejoins 5 s after a failure or a lost link.
#[embassy_executor::task]
async fn wifi_task(mut control: cyw43::Control<'static>, stack: Stack<'static>) -> ! {
    loop {
        let s = settings::get();
        let options = if s.wifi_password.is_empty() {
            JoinOptions::new_open()
        } else {
            JoinOptions::new(s.wifi_password.as_bytes())
        };
        if control.join(&s.wifi_ssid, options).await.is_ok() {
            stack.wait_link_down().await;
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

#[embassy_executor::task]
async fn mqtt_task(
    stack: Stack<'static>,
    noise: &'static SharedBox,
    uplink: &'static mut Uplink<WINDOW>,
    bufs: &'static mut Buffers,
    ota: &'static mut Ota<Updates>,
) -> ! {
    link::uplink(stack, link::Servers::from_settings(), uplink, noise, bufs, ota).await
}

#[embassy_executor::task]
async fn time_task(stack: Stack<'static>) -> ! {
    link::time_sync(stack, link::Servers::from_settings()).await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    // The boot loader started the watchdog (8 s): from here the audio loop feeds it.
    let mut watchdog = Watchdog::new(p.WATCHDOG);
    watchdog.start(Duration::from_secs(8));
    let mut updates = Updates::new(p.FLASH, settings::OTA_PUBLIC_KEY);
    // The device's settings first: everything after depends on them.
    updates.load_settings();
    let boot = updates.boot();
    let ota =
        OTA.init(Ota::start(updates, Updater::new("rp2040", settings::VERSION, "active"), boot, &FLAGS));
    let mut rng = RoscRng;
    let identity = link::identity(rng.next_u32());
    let noise: &'static SharedBox = BOX.init_with(|| Locked::new(link::noise_box()));

    // The radio: firmware and CLM from the cyw43-firmware crate, the board's NVRAM from nvram.rs.
    static FIRMWARE: &cyw43::Aligned<cyw43::A4, [u8]> = &cyw43::Aligned(*cyw43_firmware::CYW43_43439A0);
    let mut pio0 = Pio::new(p.PIO0, Irqs);
    let spi = PioSpi::new(
        &mut pio0.common,
        pio0.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio0.irq0,
        Output::new(p.PIN_25, Level::High),
        p.PIN_24,
        p.PIN_29,
        embassy_rp::dma::Channel::new(p.DMA_CH0, Irqs),
    );
    let power = Output::new(p.PIN_23, Level::Low);
    let (device, mut control, runner) =
        cyw43::new(CYW43.init(cyw43::State::new()), power, spi, FIRMWARE, nvram::NVRAM).await;
    spawner.spawn(radio_task(runner).expect("one radio task"));
    control.init(cyw43_firmware::CYW43_43439A0_CLM).await;
    control.set_power_management(cyw43::PowerManagementMode::PowerSave).await;
    let seed = u64::from(rng.next_u32()) << 32 | u64::from(rng.next_u32());
    let config = embassy_net::Config::dhcpv4(Default::default());
    let (stack, net_runner) = embassy_net::new(device, config, NET.init(StackResources::new()), seed);
    spawner.spawn(net_task(net_runner).expect("one net task"));
    spawner.spawn(wifi_task(control, stack).expect("one wifi task"));
    spawner.spawn(time_task(stack).expect("one time task"));
    let uplink = LINK.init(
        link::uplink_for::<NoiseRecord, WINDOW>(&identity, settings::VERSION).with_ota().with_slot("active"),
    );
    spawner.spawn(mqtt_task(stack, noise, uplink, BUFFERS.init(Buffers::new()), ota).expect("one mqtt task"));

    let Pio { common, sm0, .. } = Pio::new(p.PIO1, Irqs);
    let dma = embassy_rp::dma::Channel::new(p.DMA_CH1, Irqs);
    let mut mic = Microphone::new(common, sm0, dma, p.PIN_10, p.PIN_11, p.PIN_12);
    let AlarmPins { buzzer, led } = AlarmPins::new(p.PIN_15, p.PIN_14);
    let mut pins = Pins { buzzer, led, clock: link::now };
    let started = Instant::now();
    mic.run(|samples, _overruns| {
        if noise.lock(|b| b.samples(samples, &mut pins)) {
            link::READING.signal(());
            FLAGS.working.store(true, Relaxed);
        }
        // A trial image that has not proved itself in time lets the watchdog restart the chip.
        let overdue = started.elapsed() > Duration::from_secs(settings::OTA_TRIAL_S);
        if !(FLAGS.on_trial.load(Relaxed) && overdue) {
            watchdog.feed(Duration::from_secs(8));
        }
    })
    .await
}
