//! The batch being formed for the time-series server: line protocol, the acks it holds and
//! the stored marks it will record ([`super::marks`]).

use super::marks::{Marked, Marks};
use crate::clock::now_ms;
use crate::flow::{Ack, Inbound};
use bytes::Bytes;
use tokio::time::Instant;

/// Readings gathered for the next batch.
#[derive(Default)]
pub(super) struct Pending {
    pub body: String,
    pub points: u64,
    pub acks: Vec<Ack>,
    pub marks: Marked,
    pub since: Option<Instant>,
    pub created_ms: u64,
}

/// A batch formed from `Pending`, with its number.
pub(super) struct Batch {
    pub number: u64,
    pub created_ms: u64,
    pub points: u64,
    pub body: Bytes,
    pub acks: Vec<Ack>,
    pub marks: Marked,
}

impl Pending {
    /// Adds a reading as a line (stamped with its device time, or its receive time without a
    /// synchronised clock) and its ack; `Err` (why) when it cannot be written as line protocol
    /// (its ack is kept all the same).
    pub fn push(&mut self, m: &Inbound, tags: &[(&str, &str)], marks: &mut Marks) -> Result<(), String> {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            self.created_ms = now_ms();
        }
        self.acks.push(m.ack);
        let ts = m.reading.utc_ms().unwrap_or(m.received_ms) as i64;
        let start = self.body.len();
        match gridsentry_sensors::line_protocol::write_reading(&mut self.body, &m.reading, tags, ts) {
            Ok(()) => {
                self.body.push('\n');
                self.points += 1;
                marks.take(&mut self.marks, &m.reading);
                Ok(())
            }
            Err(e) => {
                self.body.truncate(start);
                Err(format!("{e:?}"))
            }
        }
    }

    /// The batch numbered `number`.
    pub fn form(self, number: u64) -> Batch {
        Batch {
            number,
            created_ms: self.created_ms,
            points: self.points,
            body: self.body.into(),
            acks: self.acks,
            marks: self.marks,
        }
    }
}
