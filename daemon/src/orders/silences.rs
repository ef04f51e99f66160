//! Silences (maintenance windows): a person says "page nobody about site X until T, because R".
//!
//! Orders raised meanwhile are recorded and shown as always; only their notifications are kept
//! in the outbox as `silenced` (listed, counted in `gridsentry_outbox{status}`) instead of being
//! sent — the notifier checks each due notification against the silences in force when it would
//! send it. A silence ends by itself at its end time, or earlier when a person expires it. Red is
//! never silenced unless the silence says `include_red` (which only an admin may set). Adding and
//! expiring a silence are recorded in the audit log in the same transaction.

use super::audit::{append, Entry};
use super::db::{args, Row};
use super::store::{Store, StoreError};
use serde::Serialize;
use serde_json::Value;

/// What a silence matches: one field of the order (`site=…`, `street=…`, `rule=…`, `device=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matcher {
    /// `site`, `street`, `rule` or `device`.
    pub field: String,
    /// The value it must equal.
    pub value: String,
}

impl Matcher {
    /// Fields a silence may match.
    pub const FIELDS: [&'static str; 4] = ["site", "street", "rule", "device"];

    /// Parses `field=value`.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let (field, value) =
            s.split_once('=').ok_or("a match is field=value (site=…, street=…, rule=…, device=…)")?;
        let (field, value) = (field.trim(), value.trim());
        if !Self::FIELDS.contains(&field) {
            return Err(format!(
                "`{}` cannot be matched: site, street, rule or device",
                crate::logsafe::escape(field, 32)
            ));
        }
        if value.is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
            return Err("the value to match is 1 to 128 printable characters".into());
        }
        Ok(Matcher { field: field.into(), value: value.into() })
    }

    fn text(&self) -> String {
        format!("{}={}", self.field, self.value)
    }
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    /// Id.
    pub id: i64,
    /// What it matches.
    pub matcher: Matcher,
    /// From (UTC ms).
    pub starts_ms: i64,
    /// Until (UTC ms; earlier if expired by hand).
    pub ends_ms: i64,
    /// Why.
    pub reason: String,
    /// Who made it.
    pub who: String,
    /// Red orders too.
    pub include_red: bool,
}

impl Silence {
    /// Whether it silences the notification with this generic payload (`gridsentry.order.v1`)
    /// at `now_ms`.
    pub fn silences(&self, payload: &Value, now_ms: i64) -> bool {
        let field = |k: &str| payload.get(k).and_then(Value::as_str);
        (self.starts_ms..self.ends_ms).contains(&now_ms)
            && (self.include_red || field("colour") != Some("red"))
            && field(&self.matcher.field) == Some(self.matcher.value.as_str())
    }
}

const COLS: &str = "id, matcher, starts_ms, ends_ms, reason, who, include_red";

fn from_row(r: &Row) -> Result<Silence, StoreError> {
    let text = r.text(1)?;
    let matcher =
        Matcher::parse(&text).map_err(|e| StoreError::Corrupt(format!("silence matcher `{text}`: {e}")))?;
    Ok(Silence {
        id: r.int(0)?,
        matcher,
        starts_ms: r.int(2)?,
        ends_ms: r.int(3)?,
        reason: r.text(4)?,
        who: r.text(5)?,
        include_red: r.int(6)? != 0,
    })
}

impl Store {
    /// Adds a silence from `now_ms` to `ends_ms` by `by`; its id.
    pub fn silence_add(
        &mut self,
        matcher: &Matcher,
        ends_ms: i64,
        reason: &str,
        include_red: bool,
        by: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.write(|tx, _| {
            let row = tx.row(
                "INSERT INTO silences (matcher, starts_ms, ends_ms, reason, who, include_red, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?2) RETURNING id",
                args![matcher.text().as_str(), now_ms, ends_ms, reason, by, i64::from(include_red)],
            )?;
            let id = row.ok_or_else(|| StoreError::Corrupt("no id for the new silence".into()))?.int(0)?;
            let until = jiff::Timestamp::from_millisecond(ends_ms).map(|t| t.to_string()).unwrap_or_default();
            let red = if include_red { ", red too" } else { "" };
            let detail = format!("{} until {until}{red}: {reason}", matcher.text());
            let subject = format!("silence {id}");
            append(
                tx,
                now_ms,
                &Entry { who: by, action: "silence.add", subject: &subject, detail: &detail },
            )?;
            Ok(id)
        })
    }

    /// Silences in force at `now_ms`.
    pub fn silences_active(&mut self, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
        let sql = format!("SELECT {COLS} FROM silences WHERE starts_ms <= ?1 AND ends_ms > ?1 ORDER BY id");
        self.read(|tx| tx.rows(&sql, args![now_ms])?.iter().map(from_row).collect())
    }

    /// The latest `limit` silences, in force or not, newest first.
    pub fn silences_recent(&mut self, limit: i64) -> Result<Vec<Silence>, StoreError> {
        let sql = format!("SELECT {COLS} FROM silences ORDER BY id DESC LIMIT ?1");
        self.read(|tx| tx.rows(&sql, args![limit])?.iter().map(from_row).collect())
    }

    /// The latest `limit` incidents, newest first ([`super::incidents`]).
    pub fn incidents(&mut self, limit: i64) -> Result<Vec<super::Incident>, StoreError> {
        self.read(|tx| super::incidents::list(tx, limit))
    }

    /// Incident `id`, with its counts now.
    pub fn incident(&mut self, id: i64) -> Result<Option<super::Incident>, StoreError> {
        self.read(|tx| super::incidents::one(tx, id))
    }

    /// Ends silence `id` now (by `by`); false if there is none in force with that id.
    pub fn silence_expire(&mut self, id: i64, by: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx
                .exec("UPDATE silences SET ends_ms = ?2 WHERE id = ?1 AND ends_ms > ?2", args![id, now_ms])?;
            if n == 1 {
                let subject = format!("silence {id}");
                append(
                    tx,
                    now_ms,
                    &Entry { who: by, action: "silence.expire", subject: &subject, detail: "ended early" },
                )?;
            }
            Ok(n == 1)
        })
    }

    /// Records notifications as silenced (not sent), each with the silence that held it.
    pub fn silenced(&mut self, rows: &[(i64, String)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx, _| {
            for (id, why) in rows {
                tx.exec(
                    "UPDATE outbox SET status = 'silenced', last_error = ?2 WHERE id = ?1 AND status = 'pending'",
                    args![*id, why.as_str()],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_match_is_one_known_field_and_a_value() {
        assert_eq!(
            Matcher::parse(" site = plaza-3 ").unwrap(),
            Matcher { field: "site".into(), value: "plaza-3".into() }
        );
        assert!(Matcher::parse("plaza-3").is_err());
        assert!(Matcher::parse("colour=red").is_err(), "colour is include_red's business");
        assert!(Matcher::parse("site=").is_err());
        assert!(Matcher::parse("site=a\nb").is_err());
    }

    #[test]
    fn a_silence_holds_its_match_within_its_time_and_red_only_if_it_says_so() {
        let s = Silence {
            id: 1,
            matcher: Matcher::parse("street=jiefangbei").unwrap(),
            starts_ms: 1_000,
            ends_ms: 2_000,
            reason: "power works".into(),
            who: "wang".into(),
            include_red: false,
        };
        let yellow = json!({ "street": "jiefangbei", "colour": "yellow" });
        let red = json!({ "street": "jiefangbei", "colour": "red" });
        assert!(s.silences(&yellow, 1_500));
        assert!(!s.silences(&yellow, 999) && !s.silences(&yellow, 2_000), "only within its time");
        assert!(!s.silences(&json!({ "street": "nanping", "colour": "yellow" }), 1_500));
        assert!(!s.silences(&red, 1_500), "red is paged");
        assert!(Silence { include_red: true, ..s }.silences(&red, 1_500));
    }
}
