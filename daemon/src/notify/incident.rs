//! An incident's pages at one receiver: the first at once, then one digest per `digest_s`.
//!
//! Why: the orders of a street's power cut are one thing to the people paged. The store puts
//! each order in its incident ([`crate::orders::incidents`]) and writes the incident into every
//! payload; here a receiver's worker remembers when it last sent each incident's message and
//! holds the incident's later notifications (postponed in the outbox, nothing spent) until the
//! next digest is due. A red order's notifications never wait here: they go at once and alone.
//! The memory is the worker's: after a restart an incident's next message goes at once.

use crate::orders::OutboxRow;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The incident of a non-red notification, and its digest interval; `None` for red ones and
/// for orders in no incident.
pub fn member(row: &OutboxRow) -> Option<(i64, Duration)> {
    let p: Value = serde_json::from_str(&row.payload).ok()?;
    if p.get("colour").and_then(Value::as_str) == Some("red") {
        return None;
    }
    let i = p.get("incident")?;
    Some((i.get("id")?.as_i64()?, Duration::from_secs(i.get("digest_s")?.as_u64()?)))
}

/// When each incident's last message went to this receiver.
#[derive(Debug, Default)]
pub struct Paced {
    sent: HashMap<i64, (Instant, Duration)>,
}

impl Paced {
    /// When the incident's next message may go (`None`: now, it is the first or due).
    pub fn next(&self, incident: i64, now: Instant) -> Option<Instant> {
        let (at, every) = self.sent.get(&incident)?;
        Some(*at + *every).filter(|t| *t > now)
    }

    /// Whether nothing of the incident went to this receiver yet (as far as this worker knows).
    pub fn first(&self, incident: i64) -> bool {
        !self.sent.contains_key(&incident)
    }

    /// The incident's message went at `now`; entries whose interval is over are forgotten (a
    /// forgotten incident's next message goes at once, as a due one would).
    pub fn sent(&mut self, incident: i64, every: Duration, now: Instant) {
        self.sent.retain(|_, (at, e)| *at + *e > now);
        self.sent.insert(incident, (now, every));
    }
}

/// One incident's notifications at hand: its id, its digest interval, the rows in outbox order.
pub type Group = (i64, Duration, Vec<OutboxRow>);

/// Splits `rows` into those outside any incident (red ones too) and each incident's, in
/// outbox order.
pub fn split(rows: Vec<OutboxRow>) -> (Vec<OutboxRow>, Vec<Group>) {
    let mut rest = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        match member(&row) {
            None => rest.push(row),
            Some((id, every)) => match groups.iter_mut().find(|g| g.0 == id) {
                Some(g) => g.2.push(row),
                None => groups.push((id, every, vec![row])),
            },
        }
    }
    (rest, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: i64, colour: &str, incident: Option<i64>) -> OutboxRow {
        let payload = json!({
            "order_id": id, "colour": colour,
            "incident": incident.map(|i| json!({ "id": i, "digest_s": 60, "first": i == id })),
        });
        OutboxRow {
            id,
            order_id: id,
            seq: 1,
            receiver: "r".into(),
            payload: payload.to_string(),
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn red_and_unrelated_rows_stay_out_of_incidents() {
        let rows = vec![
            row(1, "blue", Some(1)),
            row(2, "red", Some(1)),
            row(3, "blue", None),
            row(4, "yellow", Some(1)),
        ];
        let (rest, groups) = split(rows);
        assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].2.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(groups[0].1, Duration::from_secs(60));
    }

    #[test]
    fn an_incident_is_paged_at_once_then_once_per_interval() {
        let mut p = Paced::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        assert!(p.first(7) && p.next(7, t0).is_none(), "the first message goes at once");
        p.sent(7, every, t0);
        assert!(!p.first(7));
        assert_eq!(p.next(7, t0 + Duration::from_secs(10)), Some(t0 + every));
        assert_eq!(p.next(7, t0 + every), None, "due again after the interval");
        p.sent(8, every, t0 + every * 2);
        assert!(p.first(7), "an incident whose interval is over is forgotten");
    }
}
