//! Fleet updates in the orders database: signed images, roll-outs, the fleet as the devices
//! describe themselves, and each device's progress in each roll-out ([`crate::ota`]).
//!
//! Why here: cluster workers share this database, a roll-out's pause and the order it raises
//! commit together, and one backup holds the history of who updated what. The image itself is
//! stored too (a few hundred KB per version) so any worker can serve it.

use super::audit::{append, Entry};
use super::db::{args, Row, Tx};
use super::store::{Store, StoreError};
use serde::Serialize;

pub(crate) const SQLITE_V14: &str = "
    CREATE TABLE firmware (id INTEGER PRIMARY KEY, board TEXT NOT NULL, version TEXT NOT NULL, size INTEGER NOT NULL,
        sha256 TEXT NOT NULL, signature TEXT NOT NULL, image BLOB NOT NULL, added_ms INTEGER NOT NULL, who TEXT NOT NULL,
        UNIQUE (board, version));
    CREATE TABLE rollouts (id INTEGER PRIMARY KEY, firmware_id INTEGER NOT NULL REFERENCES firmware(id),
        matcher TEXT NOT NULL, waves TEXT NOT NULL, abort_pct INTEGER NOT NULL, wave INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'active', reason TEXT, order_id INTEGER, failed_base INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        who TEXT NOT NULL, updated_ms INTEGER NOT NULL);
    CREATE TABLE ota_fleet (device TEXT PRIMARY KEY, site TEXT NOT NULL, board TEXT NOT NULL, version TEXT NOT NULL,
        slot TEXT NOT NULL, state TEXT NOT NULL, online INTEGER NOT NULL, seen_ms INTEGER NOT NULL);
    CREATE TABLE ota_devices (rollout INTEGER NOT NULL REFERENCES rollouts(id), device TEXT NOT NULL,
        wave INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', bytes_done INTEGER NOT NULL DEFAULT 0,
        error TEXT, state_ms INTEGER NOT NULL, offered_ms INTEGER, PRIMARY KEY (rollout, device));
    CREATE TABLE ota_log (id INTEGER PRIMARY KEY, rollout INTEGER NOT NULL, device TEXT NOT NULL,
        state TEXT NOT NULL, at_ms INTEGER NOT NULL, error TEXT);
    CREATE INDEX ota_log_by_device ON ota_log(rollout, device);";

pub(crate) const POSTGRES: &str = "
    CREATE TABLE IF NOT EXISTS firmware (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, board TEXT NOT NULL,
        version TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL, signature TEXT NOT NULL, image BYTEA NOT NULL,
        added_ms BIGINT NOT NULL, who TEXT NOT NULL, UNIQUE (board, version));
    CREATE TABLE IF NOT EXISTS rollouts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        firmware_id BIGINT NOT NULL REFERENCES firmware(id), matcher TEXT NOT NULL, waves TEXT NOT NULL,
        abort_pct BIGINT NOT NULL, wave BIGINT NOT NULL DEFAULT 1, status TEXT NOT NULL DEFAULT 'active', reason TEXT,
        order_id BIGINT, failed_base BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL, who TEXT NOT NULL, updated_ms BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS ota_fleet (device TEXT PRIMARY KEY, site TEXT NOT NULL, board TEXT NOT NULL,
        version TEXT NOT NULL, slot TEXT NOT NULL, state TEXT NOT NULL, online BIGINT NOT NULL, seen_ms BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS ota_devices (rollout BIGINT NOT NULL REFERENCES rollouts(id), device TEXT NOT NULL,
        wave BIGINT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', bytes_done BIGINT NOT NULL DEFAULT 0, error TEXT,
        state_ms BIGINT NOT NULL, offered_ms BIGINT, PRIMARY KEY (rollout, device));
    CREATE TABLE IF NOT EXISTS ota_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, rollout BIGINT NOT NULL,
        device TEXT NOT NULL, state TEXT NOT NULL, at_ms BIGINT NOT NULL, error TEXT);
    CREATE INDEX IF NOT EXISTS ota_log_by_device ON ota_log(rollout, device);";

/// A signed image (without its bytes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firmware {
    pub id: i64,
    pub board: String,
    pub version: String,
    pub size: i64,
    pub sha256: String,
    pub signature: String,
    pub added_ms: i64,
    pub who: String,
}

/// A roll-out: one image to the devices a matcher chose when it was created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    pub id: i64,
    pub firmware: Firmware,
    /// `street=…`, `site=…`, `device=site/dev` or `all`.
    pub matcher: String,
    /// Cumulative percentages of the devices, e.g. `[1, 10, 50, 100]`.
    pub waves: Vec<u32>,
    /// Pause when this percentage of the devices started failed or rolled back.
    pub abort_pct: u32,
    /// The wave open now (1-based).
    pub wave: u32,
    /// `active`, `paused`, `done` or `cancelled`.
    pub status: String,
    pub reason: Option<String>,
    /// The order raised when it paused itself.
    pub order_id: Option<i64>,
    /// Devices that had failed when a person last resumed it: the pause rate counts only
    /// failures after that.
    pub failed_base: u32,
    pub created_ms: i64,
    pub who: String,
    pub updated_ms: i64,
}

/// One device in one roll-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub device: String,
    pub wave: u32,
    /// `pending` (not offered yet), then the device's own states (`offered`, `downloading`, …).
    pub state: String,
    pub bytes_done: i64,
    pub error: Option<String>,
    pub state_ms: i64,
    pub offered_ms: Option<i64>,
}

/// A device as its last `ota/state` report and status message describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetDevice {
    /// `site/device`.
    pub device: String,
    pub site: String,
    pub board: String,
    pub version: String,
    pub slot: String,
    pub state: String,
    pub online: bool,
    pub seen_ms: i64,
}

/// A device moving in a roll-out, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub rollout: i64,
    /// `site/device`.
    pub device: String,
    pub state: String,
    pub bytes_done: Option<i64>,
    pub error: Option<String>,
}

/// One entry of a device's history in a roll-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub device: String,
    pub state: String,
    pub at_ms: i64,
    pub error: Option<String>,
}

const FW: &str = "f.id, f.board, f.version, f.size, f.sha256, f.signature, f.added_ms, f.who";
const RO: &str =
    "r.id, r.matcher, r.waves, r.abort_pct, r.wave, r.status, r.reason, r.order_id, r.created_ms, r.who, r.updated_ms, r.failed_base";

fn firmware(r: &Row, at: usize) -> Result<Firmware, StoreError> {
    Ok(Firmware {
        id: r.int(at)?,
        board: r.text(at + 1)?,
        version: r.text(at + 2)?,
        size: r.int(at + 3)?,
        sha256: r.text(at + 4)?,
        signature: r.text(at + 5)?,
        added_ms: r.int(at + 6)?,
        who: r.text(at + 7)?,
    })
}

fn rollout(r: &Row) -> Result<Rollout, StoreError> {
    let waves = r.text(2)?;
    Ok(Rollout {
        id: r.int(0)?,
        matcher: r.text(1)?,
        waves: waves
            .split(',')
            .map(|w| w.parse().map_err(|_| StoreError::Corrupt(format!("roll-out waves `{waves}`"))))
            .collect::<Result<_, _>>()?,
        abort_pct: r.int(3)? as u32,
        wave: r.int(4)? as u32,
        status: r.text(5)?,
        reason: r.opt_text(6)?,
        order_id: r.opt_int(7)?,
        created_ms: r.int(8)?,
        who: r.text(9)?,
        updated_ms: r.int(10)?,
        failed_base: r.int(11)? as u32,
        firmware: firmware(r, 12)?,
    })
}

fn rollouts(tx: &mut dyn Tx, filter: &str, a: &[super::db::Arg<'_>]) -> Result<Vec<Rollout>, StoreError> {
    let sql = format!("SELECT {RO}, {FW} FROM rollouts r JOIN firmware f ON f.id = r.firmware_id {filter}");
    tx.rows(&sql, a)?.iter().map(rollout).collect()
}

/// Records `device` entering `state` in roll-out `id` (row and history), if it is a change.
fn set_state(
    tx: &mut dyn Tx,
    id: i64,
    device: &str,
    state: &str,
    bytes_done: Option<i64>,
    error: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = tx.exec(
        "UPDATE ota_devices SET state = ?3, error = ?4, state_ms = ?5,
             offered_ms = CASE WHEN ?3 = 'offered' THEN ?5 ELSE offered_ms END
         WHERE rollout = ?1 AND device = ?2 AND state <> ?3",
        args![id, device, state, error, now_ms],
    )? == 1;
    if let Some(b) = bytes_done {
        tx.exec(
            "UPDATE ota_devices SET bytes_done = ?3 WHERE rollout = ?1 AND device = ?2",
            args![id, device, b],
        )?;
    }
    if changed {
        tx.exec(
            "INSERT INTO ota_log (rollout, device, state, at_ms, error) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![id, device, state, now_ms, error],
        )?;
    }
    Ok(changed)
}

impl Store {
    /// Stores a signed image (checked by the caller); its id. Audited.
    #[allow(clippy::too_many_arguments)]
    pub fn firmware_add(
        &mut self,
        board: &str,
        version: &str,
        image: &[u8],
        sha256: &str,
        signature: &str,
        who: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.write(|tx, _| {
            let row = tx.row(
                "INSERT INTO firmware (board, version, size, sha256, signature, image, added_ms, who)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING RETURNING id",
                args![board, version, image.len() as i64, sha256, signature, image, now_ms, who],
            )?;
            let Some(row) = row else {
                return Err(StoreError::Conflict(format!("{board} firmware {version} is already stored")));
            };
            let id = row.int(0)?;
            let detail = format!("{board} {version}, {} bytes, sha256 {sha256}", image.len());
            append(
                tx,
                now_ms,
                &Entry { who, action: "firmware.add", subject: &format!("firmware {id}"), detail: &detail },
            )?;
            Ok(id)
        })
    }

    /// Every stored image, newest first.
    pub fn firmware_list(&mut self) -> Result<Vec<Firmware>, StoreError> {
        self.read(|tx| {
            tx.rows(&format!("SELECT {FW} FROM firmware f ORDER BY f.id DESC"), &[])?
                .iter()
                .map(|r| firmware(r, 0))
                .collect()
        })
    }

    /// The bytes of image `id`.
    pub fn firmware_image(&mut self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|tx| match tx.row("SELECT image FROM firmware WHERE id = ?1", args![id])? {
            Some(r) => r.opt_bytes(0),
            None => Ok(None),
        })
    }

    /// Creates a roll-out of image `firmware_id` to `targets` (device, wave), audited; its id.
    #[allow(clippy::too_many_arguments)]
    pub fn rollout_create(
        &mut self,
        firmware_id: i64,
        matcher: &str,
        waves: &[u32],
        abort_pct: u32,
        targets: &[(String, u32)],
        who: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let waves_text = waves.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        self.write(|tx, _| {
            let row = tx.row(
                "INSERT INTO rollouts (firmware_id, matcher, waves, abort_pct, created_ms, who, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5) RETURNING id",
                args![firmware_id, matcher, waves_text.as_str(), i64::from(abort_pct), now_ms, who],
            )?;
            let id = row.ok_or_else(|| StoreError::Corrupt("no id for the new roll-out".into()))?.int(0)?;
            for (device, wave) in targets {
                tx.exec(
                    "INSERT INTO ota_devices (rollout, device, wave, state_ms) VALUES (?1, ?2, ?3, ?4)",
                    args![id, device.as_str(), i64::from(*wave), now_ms],
                )?;
            }
            let detail = format!(
                "firmware {firmware_id} to {} devices ({matcher}), waves {waves_text} %, pause at {abort_pct} % failed",
                targets.len()
            );
            append(tx, now_ms, &Entry { who, action: "rollout.create", subject: &format!("rollout {id}"), detail: &detail })?;
            Ok(id)
        })
    }

    /// Roll-outs, newest first (`active_only`: those still running).
    pub fn rollouts(&mut self, active_only: bool) -> Result<Vec<Rollout>, StoreError> {
        let filter = if active_only {
            "WHERE r.status = 'active' ORDER BY r.id"
        } else {
            "ORDER BY r.id DESC LIMIT 200"
        };
        self.read(|tx| rollouts(tx, filter, &[]))
    }

    /// Roll-out `id`.
    pub fn rollout(&mut self, id: i64) -> Result<Option<Rollout>, StoreError> {
        self.read(|tx| Ok(rollouts(tx, "WHERE r.id = ?1", args![id])?.pop()))
    }

    /// The devices of roll-out `id`, by wave and name.
    pub fn rollout_targets(&mut self, id: i64) -> Result<Vec<Target>, StoreError> {
        self.read(|tx| {
            tx.rows(
                "SELECT device, wave, state, bytes_done, error, state_ms, offered_ms FROM ota_devices
                 WHERE rollout = ?1 ORDER BY wave, device",
                args![id],
            )?
            .iter()
            .map(|r| {
                Ok(Target {
                    device: r.text(0)?,
                    wave: r.int(1)? as u32,
                    state: r.text(2)?,
                    bytes_done: r.int(3)?,
                    error: r.opt_text(4)?,
                    state_ms: r.int(5)?,
                    offered_ms: r.opt_int(6)?,
                })
            })
            .collect()
        })
    }

    /// The history of roll-out `id` (optionally of one device), oldest first.
    pub fn rollout_log(&mut self, id: i64, device: Option<&str>) -> Result<Vec<LogEntry>, StoreError> {
        self.read(|tx| {
            tx.rows(
                "SELECT device, state, at_ms, error FROM ota_log WHERE rollout = ?1 AND (?2 IS NULL OR device = ?2)
                 ORDER BY id",
                args![id, device],
            )?
            .iter()
            .map(|r| Ok(LogEntry { device: r.text(0)?, state: r.text(1)?, at_ms: r.int(2)?, error: r.opt_text(3)? }))
            .collect()
        })
    }

    /// Records devices moving in roll-outs; how many changed state.
    pub fn ota_progress(&mut self, moves: &[Move], now_ms: i64) -> Result<usize, StoreError> {
        if moves.is_empty() {
            return Ok(0);
        }
        self.write(|tx, _| {
            let mut n = 0;
            for m in moves {
                let (id, bytes, error) = (m.rollout, m.bytes_done, m.error.as_deref());
                n += usize::from(set_state(tx, id, &m.device, &m.state, bytes, error, now_ms)?);
            }
            Ok(n)
        })
    }

    /// Records what devices said about themselves (`ota/state`, status messages).
    pub fn fleet_update(&mut self, seen: &[FleetDevice]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        self.write(|tx, _| {
            for d in seen {
                tx.exec(
                    "INSERT INTO ota_fleet (device, site, board, version, slot, state, online, seen_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (device) DO UPDATE SET board = excluded.board, version = excluded.version,
                         slot = excluded.slot, state = excluded.state, online = excluded.online, seen_ms = excluded.seen_ms",
                    args![&d.device, &d.site, &d.board, &d.version, &d.slot, &d.state, d.online, d.seen_ms],
                )?;
            }
            Ok(())
        })
    }

    /// Marks `device` online or offline (its status messages), if it is known.
    pub fn fleet_online(&mut self, device: &str, online: bool, now_ms: i64) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.exec(
                "UPDATE ota_fleet SET online = ?2, seen_ms = ?3 WHERE device = ?1",
                args![device, online, now_ms],
            )?;
            Ok(())
        })
    }

    /// The fleet, by device.
    pub fn fleet(&mut self) -> Result<Vec<FleetDevice>, StoreError> {
        self.read(|tx| {
            tx.rows("SELECT device, site, board, version, slot, state, online, seen_ms FROM ota_fleet ORDER BY device", &[])?
                .iter()
                .map(|r| {
                    Ok(FleetDevice {
                        device: r.text(0)?,
                        site: r.text(1)?,
                        board: r.text(2)?,
                        version: r.text(3)?,
                        slot: r.text(4)?,
                        state: r.text(5)?,
                        online: r.flag(6)?,
                        seen_ms: r.int(7)?,
                    })
                })
                .collect()
        })
    }

    /// Moves roll-out `id` to the next wave (only from `from`, so two workers cannot both).
    pub fn rollout_advance(&mut self, id: i64, from: u32, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx.exec(
                "UPDATE rollouts SET wave = ?2 + 1, updated_ms = ?3 WHERE id = ?1 AND wave = ?2 AND status = 'active'",
                args![id, i64::from(from), now_ms],
            )?;
            Ok(n == 1)
        })
    }

    /// Sets roll-out `id`'s status (`active`, `paused`, `done`, `cancelled`) from one of `from`,
    /// with why; audited as done by `who`. False when it was not in one of `from`.
    pub fn rollout_status(
        &mut self,
        id: i64,
        from: &[&str],
        status: &str,
        reason: &str,
        who: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let Some(cur) = tx.row("SELECT status FROM rollouts WHERE id = ?1", args![id])? else {
                return Ok(false);
            };
            if !from.contains(&cur.text(0)?.as_str()) {
                return Ok(false);
            }
            tx.exec(
                "UPDATE rollouts SET status = ?2, reason = ?3, updated_ms = ?4 WHERE id = ?1",
                args![id, status, reason, now_ms],
            )?;
            if status == "active" {
                // Resumed: the failures so far were seen and accepted by a person.
                tx.exec(
                    "UPDATE rollouts SET failed_base = (SELECT COUNT(*) FROM ota_devices d WHERE d.rollout = ?1
                         AND d.state IN ('failed', 'rolled_back')) WHERE id = ?1",
                    args![id],
                )?;
            }
            let action = format!("rollout.{status}");
            append(tx, now_ms, &Entry { who, action: &action, subject: &format!("rollout {id}"), detail: reason })?;
            Ok(true)
        })
    }

    /// Devices of live (active or paused) roll-outs, by state.
    pub fn ota_counts(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|tx| {
            tx.rows(
                "SELECT d.state, COUNT(*) FROM ota_devices d JOIN rollouts r ON r.id = d.rollout
                 WHERE r.status IN ('active', 'paused') GROUP BY d.state",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect()
        })
    }

    /// Remembers the order roll-out `id` raised.
    pub fn rollout_order(&mut self, id: i64, order_id: i64) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.exec("UPDATE rollouts SET order_id = ?2 WHERE id = ?1", args![id, order_id])?;
            Ok(())
        })
    }
}
