//! The bounded on-disk queue that holds batches the time-series server did not take.
//!
//! One file per batch, named `{number:016}-{created_ms}-{points}.lp` so that a directory
//! listing gives replay order (batch numbers are handed out when a batch is formed, so a batch
//! that failed in flight sorts before the ones spilled while it was out), the age of the oldest
//! unsent data and the points a dropped file held, without opening anything. A file appears
//! whole or not at all: written to `.tmp`, fsynced, renamed, directory fsynced. It is deleted
//! only after the server accepted it, so a crash during replay sends it again (a point with the
//! same series and timestamp overwrites itself: replays are idempotent).
//!
//! The bound is in bytes. Making room drops the oldest files — the newest data is what the
//! command centre looks at — and every dropped point is counted and logged as an error.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One spilled batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Batch number (replay order).
    pub number: u64,
    /// When the batch was formed, UTC ms.
    pub created_ms: u64,
    /// Points in it.
    pub points: u64,
    /// File size.
    pub bytes: u64,
}

/// The spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: BTreeMap<u64, Entry>,
    bytes: u64,
    points: u64,
}

impl Spool {
    /// Opens (creating) the directory and lists what an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut entries = BTreeMap::new();
        for item in fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".tmp") {
                fs::remove_file(&path)?;
                continue;
            }
            match parse_name(name) {
                Some((number, created_ms, points)) => {
                    let bytes = fs::metadata(&path)?.len();
                    entries.insert(number, Entry { number, created_ms, points, bytes });
                }
                None => tracing::warn!(file = %path.display(), "not a spool file; left alone"),
            }
        }
        let bytes = entries.values().map(|e| e.bytes).sum();
        let points = entries.values().map(|e| e.points).sum();
        Ok(Spool { dir: dir.to_path_buf(), max_bytes, entries, bytes, points })
    }

    /// Highest batch number on disk (the next run continues after it).
    pub fn last_number(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    /// Stores a batch durably, then makes room: returns the entries dropped (oldest first) to
    /// bring the spool back under its bound. The new batch is on disk before anything older is
    /// deleted, so a crash or a failed write never costs both.
    pub fn push(
        &mut self,
        number: u64,
        created_ms: u64,
        points: u64,
        body: &[u8],
    ) -> std::io::Result<Vec<Entry>> {
        let bytes = body.len() as u64;
        let name = format!("{number:016}-{created_ms}-{points}.lp");
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(&name))?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.entries.insert(number, Entry { number, created_ms, points, bytes });
        self.bytes += bytes;
        self.points += points;
        let mut dropped = Vec::new();
        while self.bytes > self.max_bytes {
            let Some((&oldest, _)) = self.entries.first_key_value() else { break };
            if oldest == number {
                break;
            }
            match self.remove(oldest) {
                Ok(e) => dropped.extend(e),
                Err(e) => {
                    // The new batch is safe; the spool stays over its bound until next time.
                    tracing::error!(error = %e, "time-series spool: removing the oldest batch failed");
                    break;
                }
            }
        }
        Ok(dropped)
    }

    /// The oldest batch and its contents.
    pub fn oldest(&self) -> std::io::Result<Option<(Entry, Vec<u8>)>> {
        let Some(e) = self.entries.values().next().copied() else { return Ok(None) };
        Ok(Some((e, fs::read(self.path(&e))?)))
    }

    /// Deletes a batch (sent, or dropped). `None` if it was not there.
    pub fn remove(&mut self, number: u64) -> std::io::Result<Option<Entry>> {
        let Some(e) = self.entries.remove(&number) else { return Ok(None) };
        match fs::remove_file(self.path(&e)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        self.bytes -= e.bytes;
        self.points -= e.points;
        Ok(Some(e))
    }

    /// Deletes the batches formed before `cutoff_ms` (`[privacy] readings_days`), except
    /// `keep` (a batch being sent); returns what it deleted, oldest first.
    pub fn expire(&mut self, cutoff_ms: u64, keep: Option<u64>) -> std::io::Result<Vec<Entry>> {
        let old: Vec<u64> = self
            .entries
            .values()
            .take_while(|e| e.created_ms < cutoff_ms)
            .map(|e| e.number)
            .filter(|n| Some(*n) != keep)
            .collect();
        let mut gone = Vec::new();
        for n in old {
            gone.extend(self.remove(n)?);
        }
        Ok(gone)
    }

    /// Files waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Points waiting.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Formation time of the oldest waiting batch.
    pub fn oldest_created_ms(&self) -> Option<u64> {
        self.entries.values().next().map(|e| e.created_ms)
    }

    fn path(&self, e: &Entry) -> PathBuf {
        self.dir.join(format!("{:016}-{}-{}.lp", e.number, e.created_ms, e.points))
    }
}

fn parse_name(name: &str) -> Option<(u64, u64, u64)> {
    let stem = name.strip_suffix(".lp")?;
    let mut parts = stem.splitn(3, '-');
    let n = parts.next()?.parse().ok()?;
    let t = parts.next()?.parse().ok()?;
    let p = parts.next()?.parse().ok()?;
    Some((n, t, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn survives_reopen_in_order_and_cleans_partial_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.push(7, 1000, 2, b"b\nb").unwrap();
        s.push(3, 900, 1, b"a").unwrap();
        fs::write(dir.path().join("0000000000000009-1-1.lp.tmp"), b"half").unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((s.len(), s.bytes(), s.points(), s.last_number()), (2, 4, 3, Some(7)));
        assert_eq!(s.oldest_created_ms(), Some(900));
        let (e, body) = s.oldest().unwrap().unwrap();
        assert_eq!((e.number, body.as_slice()), (3, b"a".as_slice()));
        s.remove(3).unwrap();
        assert_eq!(s.oldest().unwrap().unwrap().1, b"b\nb");
        assert!(!dir.path().join("0000000000000009-1-1.lp.tmp").exists());
    }

    #[test]
    fn batches_past_the_retention_are_deleted_but_not_the_one_being_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for (n, created) in [(1, 100), (2, 200), (3, 300), (4, 400)] {
            s.push(n, created, 1, b"x").unwrap();
        }
        let gone: Vec<u64> = s.expire(350, Some(2)).unwrap().iter().map(|e| e.number).collect();
        assert_eq!(gone, vec![1, 3]);
        assert_eq!((s.len(), s.points()), (2, 2));
        assert!(!dir.path().join("0000000000000001-100-1.lp").exists());
        assert!(s.expire(0, None).unwrap().is_empty());
    }

    #[test]
    fn a_failed_write_drops_nothing_older() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 10).unwrap();
        s.push(1, 1, 1, b"0123456789").unwrap();
        // The new batch cannot be written (a directory stands where its file would go).
        fs::create_dir(dir.path().join("0000000000000002-2-1.lp.tmp")).unwrap();
        assert!(s.push(2, 2, 1, b"abcdefghij").is_err());
        assert_eq!((s.len(), s.bytes()), (1, 10), "the older batch is still there");
        assert!(dir.path().join("0000000000000001-1-1.lp").exists());
    }

    proptest! {
        /// Whatever the sizes, the spool stays within its bound (unless one batch alone is
        /// bigger), keeps the newest batches, replays them oldest first, and every batch pushed
        /// is either waiting or reported dropped.
        #[test]
        fn bounded_ordered_and_accounted(sizes in proptest::collection::vec(1usize..300, 1..40), max in 100u64..2000) {
            let dir = tempfile::tempdir().unwrap();
            let mut s = Spool::open(dir.path(), max).unwrap();
            let mut dropped = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                dropped.extend(s.push(i as u64, i as u64, *n as u64, &vec![b'x'; *n]).unwrap());
                prop_assert!(s.bytes() <= max.max(*n as u64));
            }
            let mut waiting = Vec::new();
            while let Some((e, body)) = s.oldest().unwrap() {
                prop_assert_eq!(body.len() as u64, e.bytes);
                waiting.push(e.number);
                s.remove(e.number).unwrap();
            }
            let mut all: Vec<u64> = dropped.iter().map(|e| e.number).collect();
            prop_assert!(all.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(waiting.windows(2).all(|w| w[0] < w[1]));
            if let (Some(d), Some(w)) = (all.last(), waiting.first()) {
                prop_assert!(d < w, "dropped the oldest, kept the newest");
            }
            all.extend(waiting);
            prop_assert_eq!(all, (0..sizes.len() as u64).collect::<Vec<_>>());
            prop_assert_eq!(s.bytes(), 0);
        }
    }
}
