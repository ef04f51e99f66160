//! HJ 212: a plaza box's minute (CN=2051) and hour (CN=2061) noise records reach a platform
//! whose decoder is written here from the standard (its CRC, its packet and field layout, and
//! its CN=9014 answer), through a 10-minute outage of the platform, with hour L10/L50/L90
//! within 0.2 dB of those of the full 1-s series.

use gridsentry_sensors::{Body, NoiseReport, Timestamp};
use gridsentry_tests::daemon::{count, Daemon, Device, NOISE_RULE, T0};
use gridsentry_tests::{Hooks, Mosquitto};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MN: &str = "010000A8900016F000169DC0";
const PW: &str = "100000";

/// The standard's CRC (its appendix): register 0xFFFF; per byte, the register shifted right by
/// eight XOR the byte, then eight shifts right, XOR 0xA001 after each that drops a 1.
fn crc(data: &[u8]) -> u16 {
    let mut r: u16 = 0xFFFF;
    for &b in data {
        r = (r >> 8) ^ b as u16;
        for _ in 0..8 {
            let lsb = r & 1 == 1;
            r >>= 1;
            if lsb {
                r ^= 0xA001;
            }
        }
    }
    r
}

/// One decoded packet: the header fields and `CP`'s fields (`code-Avg` → value, ...).
#[derive(Debug, Clone)]
struct Packet {
    head: BTreeMap<String, String>,
    cp: BTreeMap<String, String>,
}

/// Decodes `##dddd<data><CRC hex>\r\n`, checking length and CRC.
fn decode(line: &str) -> Result<Packet, String> {
    let line = line.strip_suffix("\r\n").ok_or("no CRLF")?;
    let rest = line.strip_prefix("##").ok_or("no ##")?;
    let len: usize = rest[..4].parse().map_err(|_| "length")?;
    let data = &rest[4..4 + len];
    let got = u16::from_str_radix(&rest[4 + len..], 16).map_err(|_| "crc field")?;
    if rest.len() != 4 + len + 4 || got != crc(data.as_bytes()) {
        return Err(format!("bad length or CRC: {line}"));
    }
    let (head, cp) = data.split_once("CP=&&").ok_or("no CP")?;
    let cp = cp.strip_suffix("&&").ok_or("CP not closed")?;
    let head = head
        .split(';')
        .filter(|f| !f.is_empty())
        .map(|f| f.split_once('=').unwrap())
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let cp = cp
        .split([';', ','])
        .filter(|f| !f.is_empty())
        .map(|f| f.split_once('=').unwrap())
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    Ok(Packet { head, cp })
}

fn answer(qn: &str) -> String {
    let data = format!("QN={qn};ST=91;CN=9014;PW={PW};MN={MN};Flag=4;CP=&&&&");
    format!("##{:04}{data}{:04X}\r\n", data.len(), crc(data.as_bytes()))
}

/// The bureau's platform: decodes, records, answers every record; can go down and come back.
struct Platform {
    port: u16,
    got: Arc<Mutex<Vec<Packet>>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Platform {
    async fn start(port: u16) -> Platform {
        let mut p = Platform { port, got: Arc::default(), server: None };
        p.up().await;
        p
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let got = self.got.clone();
        self.server = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let got = got.clone();
                conns.spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut r = BufReader::new(r);
                    loop {
                        let mut raw = Vec::new();
                        if r.read_until(b'\n', &mut raw).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = String::from_utf8(raw).expect("ASCII");
                        let p = decode(&line).unwrap_or_else(|e| panic!("platform: {e}"));
                        let qn = p.head["QN"].clone();
                        got.lock().unwrap().push(p);
                        if w.write_all(answer(&qn).as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }));
    }

    /// Down: the listener and every connection gone (dropping the task drops its JoinSet).
    fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    fn records(&self, cn: &str) -> BTreeMap<String, Packet> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.head["CN"] == cn)
            .map(|p| (p.cp["DataTime"].clone(), p.clone()))
            .collect()
    }
}

/// Second `s`'s LAeq: a street's hum, a square dance in the second half hour of each hour.
fn level(s: u32) -> f32 {
    let base = if (1800..2700).contains(&(s % 3600)) { 71.0 } else { 56.0 };
    base + ((s * 7919) % 97) as f32 / 10.0
}

/// L_N of `values`: the level exceeded N % of the time (loudest first, rank ⌈N·n⌉).
fn exceeded(values: &[f32], share: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|x| f64::from(*x)).collect();
    v.sort_by(|a, b| b.partial_cmp(a).unwrap());
    v[(share * v.len() as f64).ceil() as usize - 1]
}

async fn send(dev: &Device, seconds: std::ops::Range<u32>) {
    for s in seconds {
        let db = level(s);
        let n = NoiseReport { interval_ms: 1000, ..NoiseReport::levels(db, db + 2.5) };
        dev.send_as(7, s, Timestamp::Utc(T0 + u64::from(s) * 1000), Body::Noise(n)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minute_and_hour_records_reach_the_platform_through_an_outage() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut platform = Platform::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("hj212-pw");
    std::fs::write(&pw, format!("{PW}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = format!(
        "{NOISE_RULE}\n[[hj212]]\ndevice = \"plaza-3/nb-01\"\nmn = \"{MN}\"\nhost = \"127.0.0.1\"\nport = {}\npassword = {{ file = \"{}\" }}\n",
        platform.port,
        pw.display()
    );
    let d = Daemon::start(broker.port, &hooks, &config).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;

    send(&dev, 0..1801).await;
    let minutes = |p: &Platform| p.records("2051").len();
    d.wait(|_| minutes(&platform) >= 30).await;
    // The platform is down for the next ten minutes of data: they wait in the database.
    platform.down();
    send(&dev, 1801..2401).await;
    let db = std::sync::Mutex::new(d.db());
    let waiting = "SELECT COUNT(*) FROM hj212_frames WHERE status = 'pending' AND cn = '2051'";
    d.wait(|_| count(&db.lock().unwrap(), waiting) >= 10).await;
    platform.up().await;
    send(&dev, 2401..7201).await;
    d.wait(|_| minutes(&platform) >= 120 && platform.records("2061").len() >= 2).await;

    let mut all: Vec<f32> = Vec::new();
    let (minute, hour) = (platform.records("2051"), platform.records("2061"));
    assert_eq!((minute.len(), hour.len()), (120, 2), "every minute and hour once");
    for p in platform.got.lock().unwrap().iter() {
        assert_eq!(
            (p.head["ST"].as_str(), p.head["PW"].as_str(), p.head["MN"].as_str(), p.head["Flag"].as_str()),
            ("23", PW, MN, "5")
        );
        assert_eq!(p.head["QN"].len(), 17, "QN is a time to the millisecond");
    }
    // Data times are the windows' starts in local time (Asia/Shanghai: T0 is 20:00 there).
    assert!(minute.contains_key("20251125200000") && minute.contains_key("20251125215900"));
    assert!(hour.contains_key("20251125200000") && hour.contains_key("20251125210000"));
    for (i, (_, p)) in hour.iter().enumerate() {
        let values: Vec<f32> = (i as u32 * 3600..(i as u32 + 1) * 3600).map(level).collect();
        for (code, share) in [("L10", 0.10), ("L50", 0.50), ("L90", 0.90)] {
            let got: f64 = p.cp[&format!("{code}-Avg")].parse().unwrap();
            let want = exceeded(&values, share);
            assert!((got - want).abs() <= 0.2, "hour {i} {code}: {got} vs {want} from the full series");
        }
        let leq =
            10.0 * (values.iter().map(|v| 10f64.powf(f64::from(*v) / 10.0)).sum::<f64>() / 3600.0).log10();
        let got: f64 = p.cp["Leq-Avg"].parse().unwrap();
        assert!((got - leq).abs() <= 0.1, "hour {i} Leq: {got} vs {leq}");
        assert_eq!(p.cp["L10-Flag"], "N");
        all.extend(values);
    }
    // A minute in the outage, its levels from its own 60 s.
    let p = &minute["20251125203500"];
    let values: Vec<f32> = (2100..2160).map(level).collect();
    let got: f64 = p.cp["L50-Avg"].parse().unwrap();
    assert!((got - exceeded(&values, 0.5)).abs() <= 0.2);
    assert_eq!(all.len(), 7200);
    let db = db.into_inner().unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM hj212_frames WHERE status = 'pending'"), 0);
    d.stop().await;
}
