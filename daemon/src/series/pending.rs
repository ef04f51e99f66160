//! The batch being formed for the time-series server: line protocol, the acks it holds and
//! the stored marks it will record ([`super::marks`]).

use super::marks::{Marked, Marks};
use crate::clock::now_ms;
use crate::flow::{Ack, Inbound};
use bytes::Bytes;
use gridsentry_sensors::line_protocol::{self, FieldValue};
use gridsentry_sensors::Timestamp;
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
    /// Adds a reading as a line (stamped with its event time, [`crate::devtime`]) and its ack; `Err` (why) when it cannot be written as line protocol
    /// (its ack is kept all the same).
    pub fn push(&mut self, m: &Inbound, tags: &[(&str, &str)], marks: &mut Marks) -> Result<(), String> {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            self.created_ms = now_ms();
        }
        self.acks.push(m.ack);
        check_time(m.event_ms)?;
        // A refused device stamp is kept as a field, which also flags the point.
        let stamp = match (m.skew, m.reading.header.time) {
            (Some(_), Timestamp::Utc(t)) => Some(i64::try_from(t).unwrap_or(i64::MAX)),
            _ => None,
        };
        let flag = stamp.map(|t| ("device_time_ms", FieldValue::Int(t)));
        let start = self.body.len();
        let fields = flag.as_slice();
        match line_protocol::write_reading_with(&mut self.body, &m.reading, tags, fields, m.event_ms as i64) {
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

/// The time a point may carry: from 2020 to a day ahead (the device time policy keeps event
/// times inside; this guards the server from a point it would refuse with its whole batch).
fn check_time(ms: u64) -> Result<(), String> {
    let latest = now_ms() + 86_400_000;
    match (crate::devtime::EARLIEST_MS..=latest).contains(&ms) {
        true => Ok(()),
        false => Err(format!("timestamp {ms} ms outside 2020..now+1d")),
    }
}
