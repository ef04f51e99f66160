//! The RP2040 noise box without its radio: the Wi-Fi build's microphone code, pins, meter, alarm
//! and outbox (`audio.rs`, the firmware core), with every report written to UART0, and its MQTT
//! session — readings and fleet updates — over UART1 to whatever bridges that line to a broker
//! (`serial.rs`). It runs on a plain Pico (no W) as a stand-alone noise alarm, and it is the
//! image `scripts/firmware-sim` runs on the emulated RP2040 (rp2040js has no CYW43 radio).
//!
//! UART0 TX on GP0, 921600 baud 8N1 (a line is ~70 bytes: 0.8 ms, well inside the 10 ms a DMA
//! buffer takes to fill). Lines:
//! - `boot noise-box-rp2040-offline VERSION SITE/DEVICE BOOT settings=FROM` (BOOT: `normal` or
//!   `trial`; FROM: `sector`, the device's own, or `build`, the build's defaults)
//! - `report seq=N laeq_cdb=X lafmax_cdb=Y overruns=Z` (levels in hundredths of a dB(A))
//! - `alarm on` / `alarm off`
//! - `ota proved` (a trial image kept itself)
//!
//! It runs behind the boot loader (boards/rp2040-boot) and feeds the watchdog from the audio
//! loop; a trial image that has not proved itself within `GRIDSENTRY_OTA_TRIAL_S` stops feeding
//! it, so the chip restarts and the boot loader goes back to the previous image.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::sync::atomic::Ordering::Relaxed;
use embassy_executor::Spawner;
use embassy_rp::bind_interrupts;
use embassy_rp::peripherals::{DMA_CH1, PIO1, UART1};
use embassy_rp::pio::{InterruptHandler, Pio};
use embassy_rp::uart::{self, BufferedInterruptHandler, BufferedUart, UartTx};
use embassy_rp::watchdog::Watchdog;
use embassy_time::{Duration, Instant};
use gridsentry_board_rp2040::audio::{AlarmPins, Microphone};
use gridsentry_board_rp2040::ota::Updates;
use gridsentry_board_rp2040::serial;
use gridsentry_firmware_core::noise::{FixedChain, NoiseRecord};
use gridsentry_firmware_core::noise_box::{NoiseBox, Pins};
use gridsentry_firmware_core::ota::Updater;
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_link::{self as link, settings, Flags, Locked, Ota, SessionBuffers};
use heapless::String;
use panic_halt as _;
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    PIO1_IRQ_0 => InterruptHandler<PIO1>;
    DMA_IRQ_0 => embassy_rp::dma::InterruptHandler<DMA_CH1>;
    UART1_IRQ => BufferedInterruptHandler<UART1>;
});

const VERSION: &str = settings::VERSION;
const WINDOW: usize = 4;
type SharedBox = Locked<NoiseBox<FixedChain, 3600>>;

/// An hour of 1 s reports, shared by the audio loop and the serial session.
static BOX: StaticCell<SharedBox> = StaticCell::new();
static LINK: StaticCell<Uplink<WINDOW>> = StaticCell::new();
static OTA: StaticCell<Ota<Updates>> = StaticCell::new();
static BUFS: StaticCell<SessionBuffers> = StaticCell::new();
static UART_TX: StaticCell<[u8; 1024]> = StaticCell::new();
static UART_RX: StaticCell<[u8; 8192]> = StaticCell::new();
static FLAGS: Flags = Flags::new();

/// Writes one line (longer ones are cut: the log must never stop the audio loop).
fn line(uart: &mut UartTx<'static, uart::Blocking>, args: core::fmt::Arguments) {
    let mut s: String<96> = String::new();
    let _ = s.write_fmt(args);
    let _ = uart.blocking_write(s.as_bytes());
    let _ = uart.blocking_write(b"\n");
}

#[embassy_executor::task]
async fn session(
    mut uart: BufferedUart,
    noise: &'static SharedBox,
    link: &'static mut Uplink<WINDOW>,
    ota: &'static mut Ota<Updates>,
    bufs: &'static mut SessionBuffers,
) -> ! {
    serial::run::<NoiseRecord, 3600, WINDOW, _>(&mut uart, link, noise, ota, bufs).await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut config = uart::Config::default();
    config.baudrate = 921_600;
    let mut log = UartTx::new_blocking(p.UART0, p.PIN_0, config);
    // The boot loader started the watchdog (8 s): from here the audio loop feeds it.
    let mut watchdog = Watchdog::new(p.WATCHDOG);
    watchdog.start(Duration::from_secs(8));

    let mut updates = Updates::new(p.FLASH, settings::OTA_PUBLIC_KEY);
    // The device's settings first: everything after depends on them.
    let (s, own) = updates.load_settings();
    let boot = updates.boot();
    let ota = OTA.init(Ota::start(updates, Updater::new("rp2040-offline", VERSION, "active"), boot, &FLAGS));
    let mut on_trial = ota.on_trial();
    let boot = if on_trial { "trial" } else { "normal" };
    line(
        &mut log,
        format_args!(
            "boot noise-box-rp2040-offline {VERSION} {}/{} {boot} settings={}",
            s.site.as_str(),
            s.device.as_str(),
            if own { "sector" } else { "build" }
        ),
    );
    let identity = link::identity(embassy_rp::clocks::RoscRng.next_u32());
    let noise: &'static SharedBox = BOX.init_with(|| Locked::new(link::noise_box()));
    let uplink =
        LINK.init(link::uplink_for::<NoiseRecord, WINDOW>(&identity, VERSION).with_ota().with_slot("active"));
    let (tx, rx) = (UART_TX.init([0; 1024]), UART_RX.init([0; 8192]));
    let uart = BufferedUart::new(p.UART1, p.PIN_4, p.PIN_5, Irqs, tx, rx, config);
    spawner.spawn(session(uart, noise, uplink, ota, BUFS.init(SessionBuffers::new())).expect("one session"));

    let Pio { common, sm0, .. } = Pio::new(p.PIO1, Irqs);
    let dma = embassy_rp::dma::Channel::new(p.DMA_CH1, Irqs);
    let mut mic = Microphone::new(common, sm0, dma, p.PIN_10, p.PIN_11, p.PIN_12);
    let AlarmPins { buzzer, led } = AlarmPins::new(p.PIN_15, p.PIN_14);
    let mut pins = Pins { buzzer, led, clock: link::now };
    let started = Instant::now();
    mic.run(|samples, overruns| {
        let (stored, alarm) = noise.lock(|b| {
            let before = b.alarm();
            let stored = b.samples(samples, &mut pins);
            (stored, (b.alarm() != before).then_some(b.alarm()))
        });
        if stored {
            link::READING.signal(());
            FLAGS.working.store(true, Relaxed);
            let newest = noise.lock(|b| b.outbox().newest().map(|(seq, r)| (seq, r.levels_cdb())));
            if let Some((seq, [laeq, lafmax, ..])) = newest {
                line(
                    &mut log,
                    format_args!("report seq={seq} laeq_cdb={laeq} lafmax_cdb={lafmax} overruns={overruns}"),
                );
            }
        }
        if let Some(on) = alarm {
            line(&mut log, format_args!("alarm {}", if on { "on" } else { "off" }));
        }
        let trial_now = FLAGS.on_trial.load(Relaxed);
        if on_trial && !trial_now {
            line(&mut log, format_args!("ota proved"));
        }
        on_trial = trial_now;
        // A trial image that has not proved itself in time lets the watchdog restart the chip.
        if !(on_trial && started.elapsed() > Duration::from_secs(settings::OTA_TRIAL_S)) {
            watchdog.feed(Duration::from_secs(8));
        }
    })
    .await
}
