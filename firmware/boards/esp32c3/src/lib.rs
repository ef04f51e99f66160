//! What every ESP32-C3 device shares (the plaza noise box and the home wristband gateway): fleet
//! updates ([`ota`]), the Wi-Fi station (esp-radio) kept associated, embassy-net with DHCP, and the SNTP task. Each
//! device's binary adds what it measures and spawns its own MQTT uplink task (embassy tasks
//! cannot be generic over the device's outbox).
//!
//! esp-rtos must run and the radio's heap must exist before [`start_wifi`]: both binaries do
//! that first thing in `main`, each with the heap its radios need.
#![no_std]

pub mod ota;

use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::WIFI;
use esp_hal::rng::Rng;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController};
use gridsentry_firmware_link::{self as link, settings};
use static_cell::StaticCell;

static NET: StaticCell<StackResources<4>> = StaticCell::new();

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Keeps the station associated: reconnects 5 s after every loss.
#[embassy_executor::task]
async fn wifi_task(mut wifi: WifiController<'static>) -> ! {
    loop {
        if wifi.connect_async().await.is_ok() {
            let _ = wifi.wait_for_disconnect_async().await;
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

#[embassy_executor::task]
async fn time_task(stack: Stack<'static>) -> ! {
    link::time_sync(stack, link::Servers::from_settings()).await
}

/// Joins the network of the build settings and returns the IP stack (the Wi-Fi, network and
/// time tasks run on `spawner`). The devices send a few hundred bytes a second, so the driver
/// runs with fewer receive buffers and no frame aggregation: a smaller heap suffices.
pub fn start_wifi(spawner: Spawner, wifi: WIFI<'static>, rng: &Rng) -> Stack<'static> {
    let s = settings::get();
    let auth = if s.wifi_password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        // Cannot fail: build.rs checked the length.
        AuthenticationMethodConfig::Wpa2Personal(s.wifi_password.as_str().try_into().unwrap_or_default())
    };
    let station = StationConfig::default()
        .with_ssid(s.wifi_ssid.as_str().try_into().unwrap_or_default())
        .with_authentication(auth);
    let config = ControllerConfig::default()
        .with_initial_config(Config::Station(station))
        .with_static_rx_buf_num(4)
        .with_dynamic_rx_buf_num(8)
        .with_dynamic_tx_buf_num(8)
        .with_ampdu_rx_enable(false)
        .with_ampdu_tx_enable(false);
    let Ok(wifi) = WifiController::new(wifi, config) else { panic!("Wi-Fi init") };
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    let net_config = embassy_net::Config::dhcpv4(Default::default());
    let (stack, runner) =
        embassy_net::new(Interface::station(), net_config, NET.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).expect("one net task"));
    spawner.spawn(wifi_task(wifi).expect("one wifi task"));
    spawner.spawn(time_task(stack).expect("one time task"));
    stack
}
