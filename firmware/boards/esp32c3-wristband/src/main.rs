//! The home wristband gateway on an ESP32-C3, for an elderly person living alone.
//!
//! Wiring: none beyond USB power: the radio does the work, time-sharing between BLE and Wi-Fi.
//!
//! - BLE central (esp-radio's controller, trouble-host): connects to each configured band in turn
//!   (`GRIDSENTRY_BANDS`) and subscribes to its Heart Rate Measurement notifications; between
//!   connection attempts it listens 10 s for bands that broadcast their heart rate in adverts.
//!   Only configured bands are taken (a neighbour's band is not this home's), unless the list is
//!   empty (installation).
//! - The core's gateway merges what arrives into one reading per band every 5 s (a change of
//!   skin contact at once: "band removed" must reach the command centre quickly), the outbox
//!   keeps an hour of them while the broker is away, and the link crate publishes them on
//!   `gs/v1/{site}/{device}/hr` over Wi-Fi.
//! - Fleet updates arrive in the MQTT session (as on the noise box: `esp32c3/src/ota.rs`); the
//!   main loop feeds TIMG1's watchdog, except on a trial image that has not proved itself
//!   (BLE host scanning, broker connected, birth acknowledged) within `GRIDSENTRY_OTA_TRIAL_S`.
#![no_std]
#![no_main]

use core::sync::atomic::Ordering::Relaxed;
use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_net::Stack as Net;
use embassy_time::{Duration, Instant, Timer};
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::ble::controller::BleConnector;
use gridsentry_board_esp32c3::ota::{self, EspChip};
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_core::wristband::{band_id, Gateway, HrRecord, Settings};
use gridsentry_firmware_link::{self as link, settings, Buffers, Flags, Holds, Locked, Ota};
use gridsentry_sensors::{HeartRateReport, Id};
use panic_halt as _;
use static_cell::StaticCell;
use trouble_host::prelude::*;

esp_bootloader_esp_idf::esp_app_desc!();

/// Readings in flight to the broker at most.
const WINDOW: usize = 4;
/// An hour of 5 s readings from one band.
const KEEP: usize = 720;
/// Bands one home gateway follows.
const BANDS: usize = 4;

type Controller = ExternalController<BleConnector<'static>, 20>;
type Ble = trouble_host::Stack<'static, Controller, DefaultPacketPool>;

/// The gateway's state and its outbox, shared by the BLE side and the uplink.
struct Home {
    gateway: Gateway<BANDS>,
    outbox: Outbox<HrRecord, KEEP>,
}

impl Holds<HrRecord, KEEP> for Home {
    fn outbox(&mut self) -> &mut Outbox<HrRecord, KEEP> {
        &mut self.outbox
    }
}

/// Stores a report with the time it was made.
fn store(outbox: &mut Outbox<HrRecord, KEEP>) -> impl FnMut(HeartRateReport) + '_ {
    move |report| {
        outbox.push(HrRecord { time: link::now(), report });
        link::READING.signal(());
    }
}

static HOME: StaticCell<Locked<Home>> = StaticCell::new();
static LINK: StaticCell<Uplink<WINDOW>> = StaticCell::new();
static BUFFERS: StaticCell<Buffers> = StaticCell::new();
static OTA: StaticCell<Ota<EspChip>> = StaticCell::new();
static FLAGS: Flags = Flags::new();
static BLE: StaticCell<HostResources<Controller, DefaultPacketPool, 1, 2>> = StaticCell::new();

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// Whether the band at `le` (HCI byte order) belongs to this home.
fn wanted(le: [u8; 6]) -> bool {
    let mut msb_first = le;
    msb_first.reverse();
    let bands = &settings::get().bands;
    bands.is_empty() || bands.contains(&msb_first)
}

/// Adverts, handed over by the BLE host's runner.
struct Adverts(&'static Locked<Home>);

impl EventHandler for Adverts {
    fn on_adv_reports(&self, reports: LeAdvReportsIter) {
        for r in reports.flatten() {
            let Ok(le) = <[u8; 6]>::try_from(r.addr.raw()) else { continue };
            if wanted(le) {
                let id = band_id(le);
                self.0.lock(|h| h.gateway.advertisement(&id, r.data, now_ms(), &mut store(&mut h.outbox)));
            }
        }
    }
}

/// One connected band: its HRM notifications until it goes away.
async fn listen(ble: &Ble, conn: &Connection<'_, DefaultPacketPool>, home: &Locked<Home>, id: &Id) {
    let Ok(client) = GattClient::<Controller, DefaultPacketPool, 4>::new(ble, conn).await else { return };
    let notifications = async {
        let Ok(services) = client.services_by_uuid(&Uuid::new_short(0x180D)).await else { return };
        let Some(service) = services.first() else { return };
        let Ok(hrm) = client.characteristic_by_uuid::<[u8]>(service, &Uuid::new_short(0x2A37)).await else {
            return;
        };
        let Ok(mut listener) = client.subscribe(&hrm, false).await else { return };
        loop {
            let n = listener.next().await;
            home.lock(|h| h.gateway.notification(id, n.as_ref(), now_ms(), &mut store(&mut h.outbox)));
        }
    };
    // The client task ends when the band disconnects.
    select(client.task(), notifications).await;
}

/// Connects to each configured band in turn; listens for adverts in between.
async fn follow_bands(ble: &'static Ble, home: &'static Locked<Home>) -> ! {
    let mut central = ble.central();
    loop {
        for band in &settings::get().bands {
            let mut le = *band;
            le.reverse();
            let addr = BdAddr::new(le);
            let targets =
                [Address { kind: AddrKind::PUBLIC, addr }, Address { kind: AddrKind::RANDOM, addr }];
            let scan_config = ScanConfig { filter_accept_list: &targets, ..Default::default() };
            let config = ConnectConfig { scan_config, connect_params: Default::default() };
            if let Ok(Ok(conn)) =
                embassy_time::with_timeout(Duration::from_secs(10), central.connect(&config)).await
            {
                listen(ble, &conn, home, &band_id(le)).await;
            }
        }
        let mut scanner = Scanner::new(central);
        let passive = ScanConfig { active: false, ..Default::default() };
        if let Ok(_session) = scanner.scan(&passive).await {
            FLAGS.working.store(true, Relaxed); // the radio works: part of a new image's proof
            Timer::after(Duration::from_secs(10)).await;
        } else {
            Timer::after(Duration::from_secs(1)).await;
        }
        central = scanner.into_inner();
    }
}

#[embassy_executor::task]
async fn ble_task(ble: &'static Ble, home: &'static Locked<Home>) -> ! {
    let mut runner = ble.runner();
    let adverts = Adverts(home);
    let host = async {
        loop {
            // A controller error: start the host again after a pause.
            let _ = runner.run_with_handler(&adverts).await;
            Timer::after(Duration::from_secs(1)).await;
        }
    };
    select(host, follow_bands(ble, home)).await;
    unreachable!("both sides run forever")
}

/// Hands each band's merged reading to the outbox when its interval is over.
#[embassy_executor::task]
async fn report_task(home: &'static Locked<Home>) -> ! {
    let report_ms = Settings::default().report_ms;
    let mut interval_start = now_ms();
    loop {
        Timer::after(Duration::from_millis(500)).await;
        let now = now_ms();
        // What is still unsent after a whole report interval goes out as backfill.
        let interval_over = now.saturating_sub(interval_start) >= report_ms;
        if interval_over {
            interval_start = now;
        }
        home.lock(|h| {
            if interval_over {
                h.outbox.interval_passed();
            }
            h.gateway.due(now, &mut store(&mut h.outbox))
        });
    }
}

#[embassy_executor::task]
async fn mqtt_task(
    stack: Net<'static>,
    home: &'static Locked<Home>,
    uplink: &'static mut Uplink<WINDOW>,
    bufs: &'static mut Buffers,
    ota: &'static mut Ota<EspChip>,
) -> ! {
    link::uplink(stack, link::Servers::from_settings(), uplink, home, bufs, ota).await
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    // Wi-Fi and BLE together need more heap than Wi-Fi alone: the boot loader's RAM plus 48 KB.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 48 * 1024);
    let timg0 = TimerGroup::new(p.TIMG0);
    esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);
    let (mut watchdog, ota, slot) = ota::start_updates(p.FLASH, p.TIMG1, "esp32c3-wristband", &FLAGS);
    let ota = OTA.init(ota);

    let rng = Rng::new();
    let identity = link::identity(rng.random());
    let home = HOME.init_with(|| {
        Locked::new(Home { gateway: Gateway::new(Settings::default()), outbox: Outbox::new() })
    });
    let stack = gridsentry_board_esp32c3::start_wifi(spawner, p.WIFI, &rng);
    let uplink = LINK
        .init(link::uplink_for::<HrRecord, WINDOW>(&identity, settings::VERSION).with_ota().with_slot(slot));
    spawner.spawn(mqtt_task(stack, home, uplink, BUFFERS.init(Buffers::new()), ota).expect("one mqtt task"));

    let Ok(connector) = BleConnector::new(p.BT, Default::default()) else { panic!("BLE init") };
    static HOST: StaticCell<Ble> = StaticCell::new();
    let ble = HOST
        .init(trouble_host::new(ExternalController::new(connector), BLE.init(HostResources::new())).build());
    spawner.spawn(ble_task(ble, home).expect("one ble task"));
    spawner.spawn(report_task(home).expect("one report task"));
    let started = Instant::now();
    loop {
        // A trial image that has not proved itself in time lets the watchdog restart the chip.
        let overdue = started.elapsed() > Duration::from_secs(settings::OTA_TRIAL_S);
        if !(FLAGS.on_trial.load(Relaxed) && overdue) {
            watchdog.feed();
        }
        Timer::after(Duration::from_secs(1)).await;
    }
}
