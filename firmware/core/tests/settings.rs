//! The device's settings sector: what `gridsentry provision` writes is taken, every wrong value
//! is refused naming its variable (and nothing of that text applies), a damaged sector is not
//! read, and no input makes the parser panic.

use gridsentry_firmware_core::settings::{sector_bytes, sector_text, Settings};
use proptest::prelude::*;

const PROVISIONED: &str = "# gridsentry provision: plaza-7/nb-03
GRIDSENTRY_SITE=plaza-7
GRIDSENTRY_DEVICE=nb-03
GRIDSENTRY_BROKER=10.0.0.2:1883
GRIDSENTRY_MQTT_USER=dev-plaza-7-nb-03
GRIDSENTRY_MQTT_PASSWORD=s3cret-and-long
GRIDSENTRY_WIFI_SSID=street
GRIDSENTRY_WIFI_PASSWORD=wifi-pass-8
GRIDSENTRY_BANDS=c0:ff:ee:00:00:01, c0:ff:ee:00:00:02
GRIDSENTRY_MIC=ics43434
GRIDSENTRY_CAL_DB=-1.5
GRIDSENTRY_ALARM_ON_DB=65
GRIDSENTRY_ALARM_OFF_DB=62.5
GRIDSENTRY_ALARM_HOLD_S=3
GRIDSENTRY_REPORT_S=10
";

#[test]
fn a_provisioned_text_is_taken_whole() {
    let s = Settings::default().with_text(PROVISIONED).unwrap();
    assert_eq!((s.site.as_str(), s.device.as_str()), ("plaza-7", "nb-03"));
    assert_eq!((s.broker_host.as_str(), s.broker_port), ("10.0.0.2", 1883));
    assert_eq!((s.mqtt_user.as_str(), s.mqtt_password.as_str()), ("dev-plaza-7-nb-03", "s3cret-and-long"));
    assert_eq!((s.wifi_ssid.as_str(), s.wifi_password.as_str()), ("street", "wifi-pass-8"));
    assert_eq!(s.bands.as_slice(), &[[0xc0, 0xff, 0xee, 0, 0, 1], [0xc0, 0xff, 0xee, 0, 0, 2]]);
    assert_eq!(s.mic.name, "ICS-43434");
    assert_eq!(
        (s.cal_db, s.alarm.on_db, s.alarm.off_db, s.alarm.hold_s, s.report_s),
        (-1.5, 65.0, 62.5, 3, 10)
    );
    // What the text does not set keeps what was there.
    assert_eq!(s.ntp_host.as_str(), Settings::default().ntp_host.as_str());
}

#[test]
fn each_wrong_value_is_refused_naming_its_variable_and_nothing_applies() {
    let base = Settings::default();
    for (line, name) in [
        ("GRIDSENTRY_BROKER=no-port", "GRIDSENTRY_BROKER"),
        ("GRIDSENTRY_BROKER=host:0", "GRIDSENTRY_BROKER"),
        ("GRIDSENTRY_SITE=Plaza/1", "GRIDSENTRY_SITE"),
        ("GRIDSENTRY_BANDS=c0:ff:ee", "GRIDSENTRY_BANDS"),
        ("GRIDSENTRY_WIFI_PASSWORD=short", "GRIDSENTRY_WIFI_PASSWORD"),
        ("GRIDSENTRY_MQTT_PASSWORD=no-user", "GRIDSENTRY_MQTT_PASSWORD"),
        ("GRIDSENTRY_MIC=mems", "GRIDSENTRY_MIC"),
        ("GRIDSENTRY_ALARM_OFF_DB=75", "GRIDSENTRY_ALARM_OFF_DB"),
        ("GRIDSENTRY_ALARM_HOLD_S=2.5", "GRIDSENTRY_ALARM_HOLD_S"),
        ("GRIDSENTRY_REPORT_S=601", "GRIDSENTRY_REPORT_S"),
        ("GRIDSENTRY_NTP=bad host", "GRIDSENTRY_NTP"),
        ("GRIDSENTRY_VERSION=9.9.9", "GRIDSENTRY_VERSION"),
        ("GRIDSENTRY_OTA_PUBLIC_KEY=00", "GRIDSENTRY_OTA_PUBLIC_KEY"),
        ("GRIDSENTRY_COLOUR=blue", "GRIDSENTRY_COLOUR"),
        ("just words", "(line)"),
    ] {
        let text = format!("GRIDSENTRY_SITE=elsewhere\n{line}\n");
        let e = base.with_text(&text).unwrap_err();
        assert_eq!(e.name.as_str(), name, "{line}: {e:?}");
    }
    assert_eq!(base, Settings::default(), "the base is never changed");
}

#[test]
fn a_sector_reads_back_and_a_damaged_one_does_not() {
    let mut sector = vec![0xffu8; 4096];
    assert_eq!(sector_text(&sector), None, "blank");
    let n = sector_bytes(PROVISIONED, &mut sector).unwrap();
    assert_eq!(n, 12 + PROVISIONED.len());
    assert_eq!(sector_text(&sector), Some(PROVISIONED));
    for at in [0, 5, 9, 12, n - 1] {
        let mut bad = sector.clone();
        bad[at] ^= 0x10;
        assert_eq!(sector_text(&bad), None, "byte {at} flipped");
    }
    assert_eq!(sector_text(&sector[..n - 1]), None, "cut short");
    assert!(sector_bytes(&"x".repeat(4085), &mut vec![0; 8192]).is_none(), "longer than a sector");
}

proptest! {
    /// Whatever a sector holds, reading it never panics, and what is taken passed every check.
    #[test]
    fn any_sector_is_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = sector_text(&bytes);
        let mut sector = vec![0xffu8; 4096];
        if let Some(n) = sector_bytes(&String::from_utf8_lossy(&bytes), &mut sector) {
            let text = sector_text(&sector[..n]).unwrap();
            if let Ok(s) = Settings::default().with_text(text) {
                prop_assert!(s.check().is_ok());
            }
        }
    }

    /// Lines of valid settings in any order and spacing read as the same settings.
    #[test]
    fn valid_settings_are_taken_in_any_order(
        order in Just((0..PROVISIONED.lines().count()).collect::<Vec<_>>()).prop_shuffle(),
        pad in "[ \t]{0,2}",
    ) {
        let lines: Vec<_> = PROVISIONED.lines().collect();
        let text: String = order.iter().map(|&i| format!("{pad}{}{pad}\n", lines[i])).collect();
        prop_assert_eq!(Settings::default().with_text(&text).unwrap(), Settings::default().with_text(PROVISIONED).unwrap());
    }
}
