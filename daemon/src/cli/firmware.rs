//! `gridsentry firmware` and `gridsentry rollout`: signing images offline, storing them in the
//! order database, and rolling them out in waves ([`gridsentry::ota`]).
//!
//! `keygen`, `sign` and `pubkey` need no config and no daemon: they run on the offline machine
//! that holds the signing key. `add` checks the signature against the config's `[ota]
//! public_key` before anything is stored, so an image the devices would refuse never reaches them.

use super::fail;
use super::people::{cli_actor, done, with_store};
use clap::Subcommand;
use gridsentry::ota::{sign, waves};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// `gridsentry firmware …`.
#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Make a signing key (PKCS#8 PEM, written 0600) and print its public key. Keep the file
    /// offline (docs/firmware.md).
    Keygen {
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's public key (for `[ota] public_key` and the firmware build).
    Pubkey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Sign an image offline: writes IMAGE.sig (hex Ed25519 over SHA-512 of the image).
    Sign {
        /// The app image (RP2040: the raw binary of the active slot; ESP32-C3: the app image).
        image: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// Store a signed image in the order database (checked against `[ota] public_key`).
    Add {
        image: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Board it is built for: rp2040 (Pico W), rp2040-offline (plain Pico), esp32c3,
        /// esp32c3-wristband, host.
        #[arg(long)]
        board: String,
        /// Its firmware version (what the device reports once it runs it).
        #[arg(long)]
        version: String,
        /// The signature file (default IMAGE.sig).
        #[arg(long)]
        sig: Option<PathBuf>,
    },
    /// The stored images.
    List {
        #[arg(long)]
        config: PathBuf,
    },
}

/// `gridsentry rollout …`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Roll a stored image out to the devices that match, in waves.
    Create {
        /// The firmware version to roll out.
        #[arg(long)]
        firmware: String,
        /// Its board, when several boards have that version.
        #[arg(long)]
        board: Option<String>,
        /// `street=…`, `site=…`, `device=SITE/DEVICE` or `all`.
        #[arg(long = "match")]
        matcher: String,
        /// Cumulative percentages of the devices per wave.
        #[arg(long, default_value = "1,10,50,100")]
        waves: String,
        /// Pause when this percentage of the devices started failed or rolled back.
        #[arg(long, default_value_t = 5)]
        abort_at_failed_pct: u32,
    },
    /// The latest roll-outs.
    List,
    /// One roll-out, device by device.
    Show { id: i64 },
    /// Stop offering it to more devices (those downloading finish).
    Pause { id: i64 },
    /// Go on after a pause.
    Resume { id: i64 },
    /// End it for good.
    Cancel { id: i64 },
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `gridsentry firmware`.
pub fn firmware(cmd: FirmwareCommand) -> ExitCode {
    match cmd {
        FirmwareCommand::Keygen { out } => done((|| {
            let (pem, public) = sign::generate().map_err(|e| e.to_string())?;
            let mut f = std::fs::OpenOptions::new();
            std::os::unix::fs::OpenOptionsExt::mode(f.write(true).create_new(true), 0o600);
            let mut file = f.open(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            file.write_all(pem.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("{public}");
            eprintln!(
                "signing key written to {} (0600): keep it offline; the line above is its public key",
                out.display()
            );
            Ok(())
        })()),
        FirmwareCommand::Pubkey { key } => done((|| {
            println!("{}", sign::Signer::from_file(&key).map_err(|e| e.to_string())?.public_hex());
            Ok(())
        })()),
        FirmwareCommand::Sign { image, key } => done((|| {
            let signer = sign::Signer::from_file(&key).map_err(|e| e.to_string())?;
            let bytes = read(&image)?;
            let sig = signer.sign(&bytes);
            let out = PathBuf::from(format!("{}.sig", image.display()));
            std::fs::write(&out, format!("{sig}\n")).map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "{}  ({} bytes, sha256 {}, public key {})",
                out.display(),
                bytes.len(),
                sign::sha256_hex(&bytes),
                signer.public_hex()
            );
            Ok(())
        })()),
        FirmwareCommand::Add { image, config, board, version, sig } => {
            let by = cli_actor();
            let now = gridsentry::clock::now_ms() as i64;
            done(with_store(&config, move |s, cfg| {
                let ota =
                    cfg.ota.as_ref().ok_or("the config has no [ota] section (public_key)")?.get_ref().clone();
                if !["rp2040", "rp2040-offline", "esp32c3", "esp32c3-wristband", "host"]
                    .contains(&board.as_str())
                {
                    return Err(format!(
                        "--board {board}: rp2040, rp2040-offline, esp32c3, esp32c3-wristband or host"
                    ));
                }
                let ok = |c: char| c.is_ascii_alphanumeric() || ".+-_".contains(c);
                if version.is_empty() || version.len() > 24 || !version.chars().all(ok) {
                    return Err("--version: 1 to 24 characters of A-Z a-z 0-9 . + - _".into());
                }
                let bytes = read(&image)?;
                let sig_path = sig.unwrap_or_else(|| PathBuf::from(format!("{}.sig", image.display())));
                let sig_hex = String::from_utf8_lossy(&read(&sig_path)?).trim().to_string();
                sign::verify(&ota.public_key, &bytes, &sig_hex)
                    .map_err(|e| format!("{}: {e} (signed with another key? `gridsentry firmware pubkey --key FILE` shows a key's public half)", image.display()))?;
                let sha = sign::sha256_hex(&bytes);
                let id = s
                    .firmware_add(&board, &version, &bytes, &sha, &sig_hex, &by, now)
                    .map_err(|e| e.to_string())?;
                println!(
                    "firmware {id}: {board} {version}, {} bytes, sha256 {sha}, signature checked",
                    bytes.len()
                );
                Ok(())
            }))
        }
        FirmwareCommand::List { config } => done(with_store(&config, |s, _| {
            println!(
                "{:>4}  {:<18} {:<12} {:>9}  {:<20} SHA256",
                "ID", "BOARD", "VERSION", "BYTES", "ADDED BY"
            );
            for f in s.firmware_list().map_err(|e| e.to_string())? {
                println!(
                    "{:>4}  {:<18} {:<12} {:>9}  {:<20} {}",
                    f.id, f.board, f.version, f.size, f.who, f.sha256
                );
            }
            Ok(())
        })),
    }
}

/// `gridsentry rollout`.
pub fn rollout(file: PathBuf, cmd: RolloutCommand) -> ExitCode {
    let by = cli_actor();
    let now = gridsentry::clock::now_ms() as i64;
    let status = |id: i64, from: &'static [&'static str], to: &'static str, why: String| {
        let by = by.clone();
        done(with_store(&file, move |s, _| match s.rollout_status(id, from, to, &why, &by, now) {
            Ok(true) => {
                println!("rollout {id}: {to}");
                Ok(())
            }
            Ok(false) => Err(format!("rollout {id}: not found, or not {}", from.join(" or "))),
            Err(e) => Err(e.to_string()),
        }))
    };
    match cmd {
        RolloutCommand::Create { firmware, board, matcher, waves: w, abort_at_failed_pct } => {
            let waves = match waves::parse_waves(&w) {
                Ok(w) => w,
                Err(e) => return fail(&format!("--waves: {e}")),
            };
            if abort_at_failed_pct > 100 {
                return fail("--abort-at-failed-pct: 0 to 100");
            }
            done(with_store(&file, move |s, cfg| {
                let images = s.firmware_list().map_err(|e| e.to_string())?;
                let chosen: Vec<_> = images
                    .iter()
                    .filter(|f| f.version == firmware && board.as_ref().is_none_or(|b| *b == f.board))
                    .collect();
                let fw = match chosen.as_slice() {
                    [one] => *one,
                    [] => return Err(format!("no stored firmware {firmware} (gridsentry firmware add)")),
                    _ => return Err(format!("firmware {firmware} exists for several boards: say --board")),
                };
                let street_of = |site: &str| {
                    cfg.sites.iter().map(|s| s.get_ref()).find(|s| s.id == site).map(|s| s.street.clone())
                };
                let (field, value) = matcher.split_once('=').unwrap_or((matcher.as_str(), ""));
                let fleet = s.fleet().map_err(|e| e.to_string())?;
                let mut devices: Vec<String> = fleet
                    .iter()
                    .filter(|d| d.board == fw.board && d.version != fw.version)
                    .filter(|d| match field {
                        "all" => true,
                        "street" => street_of(&d.site).as_deref() == Some(value),
                        "site" => d.site == value,
                        "device" => d.device == value,
                        _ => false,
                    })
                    .map(|d| d.device.clone())
                    .collect();
                if !["all", "street", "site", "device"].contains(&field) {
                    return Err("--match: street=…, site=…, device=SITE/DEVICE or all".into());
                }
                if devices.is_empty() {
                    return Err(format!(
                        "no {} device matches {matcher} and runs another version than {}",
                        fw.board, fw.version
                    ));
                }
                devices.sort();
                let targets = waves::assign(&devices, &waves);
                let id = s
                    .rollout_create(fw.id, &matcher, &waves, abort_at_failed_pct, &targets, &by, now)
                    .map_err(|e| e.to_string())?;
                println!("rollout {id}: {} {} to {} devices, waves {w} %, pauses at {abort_at_failed_pct} % failed", fw.board, fw.version, devices.len());
                Ok(())
            }))
        }
        RolloutCommand::List => done(with_store(&file, |s, _| {
            println!(
                "{:>4}  {:<9} {:<18} {:<10} {:<20} {:<6} MATCH",
                "ID", "STATUS", "BOARD", "VERSION", "WAVES", "WAVE"
            );
            for r in s.rollouts(false).map_err(|e| e.to_string())? {
                let waves = r.waves.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                println!(
                    "{:>4}  {:<9} {:<18} {:<10} {:<20} {:<6} {}",
                    r.id, r.status, r.firmware.board, r.firmware.version, waves, r.wave, r.matcher
                );
            }
            Ok(())
        })),
        RolloutCommand::Show { id } => done(with_store(&file, move |s, _| {
            let r = s.rollout(id).map_err(|e| e.to_string())?.ok_or(format!("no rollout {id}"))?;
            println!(
                "rollout {id}: {} {} {}, wave {} of {}{}",
                r.status,
                r.firmware.board,
                r.firmware.version,
                r.wave,
                r.waves.len(),
                r.reason.map(|x| format!(" ({x})")).unwrap_or_default()
            );
            println!("{:<4} {:<32} {:<12} {:>9}  ERROR", "WAVE", "DEVICE", "STATE", "BYTES");
            for t in s.rollout_targets(id).map_err(|e| e.to_string())? {
                println!(
                    "{:<4} {:<32} {:<12} {:>9}  {}",
                    t.wave,
                    t.device,
                    t.state,
                    t.bytes_done,
                    t.error.unwrap_or_default()
                );
            }
            Ok(())
        })),
        RolloutCommand::Pause { id } => status(id, &["active"], "paused", "paused by hand".into()),
        RolloutCommand::Resume { id } => status(id, &["paused"], "active", "resumed by hand".into()),
        RolloutCommand::Cancel { id } => {
            status(id, &["active", "paused"], "cancelled", "cancelled by hand".into())
        }
    }
}
