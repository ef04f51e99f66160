//! What the time-series server already has, per device: the window of (boot, sequence number)
//! stored or spilled ([`SeqWindow`]), so that a reading the broker redelivers is not written
//! twice, and a late arrival below the highest is still written once.
//!
//! A reading is redelivered when its MQTT ack did not reach the broker (the daemon was killed,
//! or the connection dropped, after the server took it). The pipeline recognises it as already
//! applied; it may or may not be stored yet (the kill may have come between the commit and the
//! write). The marks tell the two apart: they are written to the order database (one small
//! transaction per stored batch, own connection) after the server accepted a batch or it was
//! spilled, and before its acks go out; within a run, a reading taken into a batch counts at
//! once (its redelivery can arrive while it still waits there, e.g. after a broker restart). What stays in doubt is a batch the server accepted in
//! the instant before a SIGKILL, ahead of its marks: it is written again (InfluxDB overwrites a
//! point with the same series and time; a server without that shows it twice).

use gridsentry_sensors::seq::SeqWindow;
use gridsentry_sensors::{Body, Id, Reading};
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The readings (site, device, boot, seq) a batch carries, recorded once it is stored.
pub type Marked = Vec<(Id, Id, u32, u32)>;

type Windows = HashMap<(Id, Id), SeqWindow>;

/// The marks and their table.
pub struct Marks {
    conn: Connection,
    /// What earlier runs stored, and everything this run has taken to store (a redelivery can
    /// arrive while the first copy still waits in a batch).
    known: Windows,
    /// What is stored or spilled: the rows of the table.
    stored: Windows,
}

impl Marks {
    /// Opens (creating) the `series_seq` table in the order database and loads it.
    pub fn open(db: &Path) -> rusqlite::Result<Marks> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS series_seq (device TEXT PRIMARY KEY, boot INTEGER NOT NULL, seq INTEGER NOT NULL, seen BLOB) WITHOUT ROWID",
        )?;
        // Tables of earlier versions hold the highest number only (all below count as stored).
        let has_seen: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('series_seq') WHERE name = 'seen'",
            [],
            |r| r.get(0),
        )?;
        if !has_seen {
            conn.execute_batch("ALTER TABLE series_seq ADD COLUMN seen BLOB")?;
        }
        let mut stored = HashMap::new();
        {
            let mut st = conn.prepare("SELECT device, boot, seq, seen FROM series_seq")?;
            let rows = st.query_map([], |r| {
                let seen: Option<Vec<u8>> = r.get(3)?;
                Ok((r.get::<_, String>(0)?, SeqWindow::from_parts(r.get(1)?, r.get(2)?, seen.as_deref())))
            })?;
            for (key, w) in rows.flatten() {
                let Some((site, device)) = key.split_once('/') else { continue };
                if let (Ok(site), Ok(device)) = (Id::new(site), Id::new(device)) {
                    stored.insert((site, device), w);
                }
            }
        }
        Ok(Marks { conn, known: stored.clone(), stored })
    }

    /// True when this reading is stored, or taken to be stored, already (its sequence number
    /// is in the device's window, or further below it than the window reaches).
    pub fn has(&self, r: &Reading) -> bool {
        if matches!(r.body, Body::Status(_)) {
            return false;
        }
        let h = &r.header;
        self.known
            .get(&(h.site.clone(), h.device.clone()))
            .is_some_and(|w| !w.check(h.boot_id, h.seq).is_fresh())
    }

    /// A reading taken to be stored in the batch whose marks are `batch`.
    pub fn take(&mut self, batch: &mut Marked, r: &Reading) {
        if matches!(r.body, Body::Status(_)) {
            return;
        }
        let h = &r.header;
        accept(&mut self.known, (h.site.clone(), h.device.clone()), h.boot_id, h.seq);
        batch.push((h.site.clone(), h.device.clone(), h.boot_id, h.seq));
    }

    /// Records a batch's marks durably (the batch is stored or spilled).
    pub fn record(&mut self, batch: &Marked) -> rusqlite::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut changed = HashSet::new();
        for (site, device, boot, seq) in batch {
            let key = (site.clone(), device.clone());
            accept(&mut self.stored, key.clone(), *boot, *seq);
            changed.insert(key);
        }
        // IMMEDIATE: take the write lock up front (waiting on the pipeline's commits through the
        // busy timeout) instead of failing an upgrade from a read.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO series_seq (device, boot, seq, seen) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for key in &changed {
                let Some(w) = self.stored.get(key) else { continue };
                let (boot, seq, seen) = w.parts();
                put.execute(params![format!("{}/{}", key.0, key.1), boot, seq, &seen[..]])?;
            }
        }
        tx.commit()
    }
}

fn accept(windows: &mut Windows, key: (Id, Id), boot: u32, seq: u32) {
    match windows.get_mut(&key) {
        Some(w) => {
            w.accept(boot, seq);
        }
        None => {
            windows.insert(key, SeqWindow::new(boot, seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridsentry_sensors::{Header, NoiseReport, Timestamp};

    fn reading(boot: u32, seq: u32) -> Reading {
        let header = Header {
            site: Id::new("s").unwrap(),
            device: Id::new("d").unwrap(),
            boot_id: boot,
            seq,
            time: Timestamp::Utc(0),
            historical: false,
        };
        Reading { header, body: Body::Noise(NoiseReport::levels(60.0, 60.0)) }
    }

    #[test]
    fn marks_survive_a_reopen_and_a_new_boot_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("orders.db");
        let mut m = Marks::open(&db).unwrap();
        let mut batch = Marked::new();
        for seq in [3, 7, 5] {
            m.take(&mut batch, &reading(1, seq));
        }
        assert!(m.has(&reading(1, 5)), "taken: known before it is recorded");
        assert!(!m.has(&reading(1, 6)), "below the highest, never taken");
        m.record(&batch).unwrap();
        let mut unrecorded = Marked::new();
        m.take(&mut unrecorded, &reading(1, 9));
        drop(m);
        let m = Marks::open(&db).unwrap();
        assert!(m.has(&reading(1, 7)) && m.has(&reading(1, 3)));
        assert!(!m.has(&reading(1, 8)), "not stored yet");
        assert!(!m.has(&reading(1, 9)), "taken by an earlier run but never recorded");
        assert!(!m.has(&reading(1, 4)), "below the highest but never stored: a late arrival");
        assert!(!m.has(&reading(2, 1)), "another boot");
    }
}
