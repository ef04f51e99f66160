//! The chips' network side on a PC, for the end-to-end tests. Wiring: a Linux TAP device stands
//! in for the radio. Everything above it is what the RP2040 and ESP32-C3 run: embassy-net
//! (smoltcp) with a static address, the link crate's MQTT uplink and SNTP tasks, the core's
//! uplink, outbox and fixed-point meter. The "microphone" is a steady 1 kHz tone, one second of
//! it per report, `--reports-per-second` times a second (time runs faster than on a plaza).
//!
//! ```text
//! gridsentry-board-tap --tap NAME --ip 10.77.0.2 --broker 10.77.0.1:1883 --ntp 10.77.0.1:12300 \
//!     --site plaza-3 --device nb-01 [--boot-id N] [--reports-per-second R] [--ota-key HEX]
//! ```
//! Fleet updates run as on the ESP32-C3, over flash in RAM (`chip.rs`).
//! The TAP device must exist and be up, with the broker and time server reachable on it (the
//! test creates it with `ip tuntap add` and gives the host end a /24 address).

mod chip;

use chip::RamChip;
use embassy_executor::Spawner;
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer};
use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::noise::{FixedChain, Mic, NoiseRecord};
use gridsentry_firmware_core::noise_box::{Board, NoiseBox};
use gridsentry_firmware_core::ota::{Boot, Updater};
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_link::{self as link, Buffers, Flags, Locked, Ota, Servers};
use gridsentry_sensors::{Id, Timestamp};
use static_cell::StaticCell;

type SharedBox = Locked<NoiseBox<FixedChain, 3600>>;

static BOX: StaticCell<SharedBox> = StaticCell::new();
static NET: StaticCell<StackResources<4>> = StaticCell::new();
static LINK: StaticCell<Uplink<4>> = StaticCell::new();
static BUFFERS: StaticCell<Buffers> = StaticCell::new();
static OTA: StaticCell<Ota<RamChip>> = StaticCell::new();
static FLAGS: Flags = Flags::new();

struct Args {
    tap: String,
    ip: Ipv4Address,
    servers: Servers<'static>,
    identity: Identity,
    per_second: u32,
    ota_key: Option<[u8; 32]>,
}

fn host_port(s: &str, what: &str) -> Result<(&'static str, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or(format!("{what}: expected HOST:PORT"))?;
    let port = port.parse().map_err(|e| format!("{what}: port: {e}"))?;
    Ok((Box::leak(host.to_string().into_boxed_str()), port))
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut tap, mut ip, mut broker, mut ntp, mut site, mut device) = (None, None, None, None, None, None);
    let (mut boot_id, mut per_second, mut ota_key) = (1u32, 10u32, None);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            // Interface names have at most 15 bytes (embassy-net-tuntap would panic on more).
            "--tap" => {
                let name = value()?;
                if !(1..16).contains(&name.len()) {
                    return Err("--tap: 1 to 15 bytes".into());
                }
                tap = Some(name);
            }
            "--ip" => ip = Some(value()?.parse::<Ipv4Address>().map_err(|e| format!("--ip: {e}"))?),
            "--broker" => broker = Some(host_port(&value()?, "--broker")?),
            "--ntp" => ntp = Some(host_port(&value()?, "--ntp")?),
            "--site" => site = Some(Id::new(&value()?).map_err(|e| format!("--site: {e}"))?),
            "--device" => device = Some(Id::new(&value()?).map_err(|e| format!("--device: {e}"))?),
            "--boot-id" => boot_id = value()?.parse().map_err(|e| format!("--boot-id: {e}"))?,
            "--reports-per-second" => {
                per_second = value()?.parse().map_err(|e| format!("--reports-per-second: {e}"))?
            }
            "--ota-key" => {
                let hex = value()?;
                let bytes: Option<Vec<u8>> = (0..hex.len())
                    .step_by(2)
                    .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                    .collect();
                ota_key = Some(bytes.and_then(|b| b.try_into().ok()).ok_or("--ota-key: 64 hex digits")?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let (broker_host, broker_port) = broker.ok_or("--broker HOST:PORT is required")?;
    let (ntp_host, ntp_port) = ntp.ok_or("--ntp HOST:PORT is required")?;
    Ok(Args {
        tap: tap.ok_or("--tap NAME is required")?,
        ip: ip.ok_or("--ip ADDRESS is required")?,
        servers: Servers { broker_host, broker_port, ntp_host, ntp_port },
        identity: Identity::new(
            site.ok_or("--site is required")?,
            device.ok_or("--device is required")?,
            boot_id,
        ),
        per_second: per_second.max(1),
        ota_key,
    })
}

/// No buzzer here: the alarm is printed.
struct Console;

impl Board for Console {
    fn alarm(&mut self, on: bool) {
        eprintln!("gridsentry-board-tap: alarm {}", if on { "ON" } else { "off" });
    }

    fn now(&self) -> Timestamp {
        link::now()
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn time_task(stack: Stack<'static>, servers: Servers<'static>) -> ! {
    link::time_sync(stack, servers).await
}

#[embassy_executor::task]
async fn mqtt_task(
    stack: Stack<'static>,
    servers: Servers<'static>,
    noise: &'static SharedBox,
    uplink: &'static mut Uplink<4>,
    ota: &'static mut Ota<RamChip>,
) -> ! {
    link::uplink(stack, servers, uplink, noise, BUFFERS.init(Buffers::new()), ota).await
}

/// One second of a 1 kHz tone at −30 dBFS (peak, 24-bit samples).
fn tone() -> Vec<i32> {
    let amplitude = 8_388_607.0 * 10f64.powf(-30.0 / 20.0);
    (0..48_000)
        .map(|n| (amplitude * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48_000.0).sin()) as i32)
        .collect()
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gridsentry-board-tap: {e}");
            std::process::exit(2);
        }
    };
    let device = match TunTapDevice::new(&a.tap) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gridsentry-board-tap: TAP device {}: {e}", a.tap);
            std::process::exit(1);
        }
    };
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(a.ip, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let seed = u64::from(a.identity.boot_id()) | 1;
    let (stack, runner) = embassy_net::new(device, config, NET.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).expect("one net task"));
    spawner.spawn(time_task(stack, a.servers).expect("one time task"));
    let noise: &'static SharedBox =
        BOX.init_with(|| Locked::new(NoiseBox::new(&Mic::INMP441, 0.0, AlarmSettings::default(), 1)));
    let version = env!("CARGO_PKG_VERSION");
    let updater = Updater::new("host", version, "ota_0");
    let ota = OTA.init(Ota::start(RamChip::new(a.ota_key), updater, Boot::Normal, &FLAGS));
    let uplink = LINK.init(Uplink::new::<NoiseRecord>(&a.identity, version).with_ota().with_slot("ota_0"));
    spawner.spawn(mqtt_task(stack, a.servers, noise, uplink, ota).expect("one mqtt task"));

    let second = tone();
    let mut console = Console;
    let period = Duration::from_micros(1_000_000 / u64::from(a.per_second));
    loop {
        Timer::after(period).await;
        if noise.lock(|b| b.samples(&second, &mut console)) {
            link::READING.signal(());
        }
    }
}
