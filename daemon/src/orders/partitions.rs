//! The store's side of cluster mode's partition ownership (`cluster::owner`): workers' liveness,
//! take-overs (epochs) and heartbeats. Kept in the order store because the epoch a commit checks
//! and the position it writes live in the same database as the orders.

use super::db::args;
use super::store::{Store, StoreError};

/// A partition just taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The new epoch (every commit of the new owner checks it).
    pub epoch: i64,
    /// The last stream sequence whose effects (orders, rule state) are committed.
    pub checkpoint: u64,
    /// The last stream sequence up to which every reading is finished, stored in the time
    /// series included (recorded with heartbeats); `None`: never recorded.
    pub stored: Option<u64>,
}

impl Store {
    /// Cluster mode: takes partition `p` for `owner`: bumps its epoch (fencing whoever held it)
    /// and returns the new epoch and the partition's stream positions. The caller must hold the
    /// partition's advisory lock (cluster::owner).
    pub fn take_partition(&mut self, p: u32, owner: &str, now_ms: i64) -> Result<Taken, StoreError> {
        self.write(|tx, _| {
            tx.exec("INSERT INTO partitions (p) VALUES (?1) ON CONFLICT DO NOTHING", args![i64::from(p)])?;
            let row = tx
                .row(
                    "UPDATE partitions SET epoch = epoch + 1, owner = ?2, heartbeat_ms = ?3 WHERE p = ?1
                     RETURNING epoch, checkpoint, stored",
                    args![i64::from(p), owner, now_ms],
                )?
                .ok_or_else(|| StoreError::Corrupt(format!("partition {p} row vanished")))?;
            Ok(Taken {
                epoch: row.int(0)?,
                checkpoint: row.int(1)? as u64,
                stored: row.opt_int(2)?.map(|s| s as u64),
            })
        })
    }

    /// Records `me` as alive at `now_ms`; the number of workers seen within `lease_ms`.
    pub fn worker_seen(&mut self, me: &str, now_ms: i64, lease_ms: i64) -> Result<usize, StoreError> {
        self.write(|tx, _| {
            tx.exec(
                "INSERT INTO workers (id, seen_ms) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms",
                args![me, now_ms],
            )?;
            let live = tx.row("SELECT COUNT(*) FROM workers WHERE seen_ms > ?1", args![now_ms - lease_ms])?;
            Ok(live.map_or(Ok(1), |r| r.int(0))? as usize)
        })
    }

    /// Heartbeat of partition `p` held at `epoch`, with the position up to which every reading
    /// is finished (`stored`); false if another worker has taken it.
    pub fn heartbeat(&mut self, p: u32, epoch: i64, now_ms: i64, stored: u64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx.exec(
                "UPDATE partitions SET heartbeat_ms = ?3, stored = ?4 WHERE p = ?1 AND epoch = ?2",
                args![i64::from(p), epoch, now_ms, stored as i64],
            )?;
            Ok(n == 1)
        })
    }

    /// The last heartbeat of partition `p` and its owner (`None`: never taken).
    pub fn partition_heartbeat(&mut self, p: u32) -> Result<Option<(i64, Option<String>)>, StoreError> {
        self.read(|tx| {
            tx.row("SELECT heartbeat_ms, owner FROM partitions WHERE p = ?1", args![i64::from(p)])?
                .map(|r| Ok((r.int(0)?, r.opt_text(1)?)))
                .transpose()
        })
    }
}
