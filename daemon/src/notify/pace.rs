//! Per-receiver rate limits, and the digest that keeps them from dropping anything.
//!
//! Chat robots refuse what comes faster than their vendor allows — a WeCom or DingTalk group
//! robot takes about 20 messages a minute — so in a storm (a street's power cut takes every box
//! and gateway offline at once) one page per order would be refused, retried and queued, and the
//! red heart-rate order that matters would wait behind blue "offline" pages. Instead each
//! receiver has a budget of `max_per_minute` messages in any 60 s ([`Pace`]); within it, [`plan`]
//! sends red notifications first, each on its own, then the others in order; when they do not
//! all fit, the last message of the budget is one digest of every non-red notification left
//! (counts by colour and rule, and the list). Red is never merged; a red beyond the budget waits
//! for the next free slot, ahead of everything else. Nothing is dropped: a digested notification
//! is recorded as delivered with the digest, and each order keeps its own history.

use super::super::orders::OutboxRow;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The window a receiver's `max_per_minute` counts in.
pub const MINUTE: Duration = Duration::from_secs(60);

/// Messages sent to one receiver in the last window.
#[derive(Debug)]
pub struct Pace {
    limit: Option<usize>,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl Pace {
    /// At most `limit` messages per `window` (`None`: no limit).
    pub fn new(limit: Option<u32>, window: Duration) -> Pace {
        Pace { limit: limit.map(|l| l.max(1) as usize), window, sent: VecDeque::new() }
    }

    /// Messages that may go out at `now` (`None`: any number).
    pub fn remaining(&mut self, now: Instant) -> Option<usize> {
        let limit = self.limit?;
        while self.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        Some(limit.saturating_sub(self.sent.len()))
    }

    /// Slots of each window kept for red: half of the limit. Other notifications may use a slot
    /// only while more than this many are left, so a red finds one even in a storm.
    pub fn reserve(&self) -> usize {
        self.limit.map_or(0, |l| l / 2)
    }

    /// `n` messages went out at `now`.
    pub fn spend(&mut self, now: Instant, n: usize) {
        if self.limit.is_some() {
            self.sent.extend(std::iter::repeat_n(now, n));
        }
    }

    /// How long until at least `need` messages may go out (zero if they may now).
    pub fn until(&mut self, now: Instant, need: usize) -> Duration {
        let (Some(limit), Some(remaining)) = (self.limit, self.remaining(now)) else { return Duration::ZERO };
        if remaining >= need {
            return Duration::ZERO;
        }
        // The oldest sends that must leave the window first.
        let leave = (need.min(limit) - remaining).max(1);
        self.sent.get(leave - 1).map_or(Duration::ZERO, |t| (*t + self.window).saturating_duration_since(now))
    }
}

/// What goes out now.
#[derive(Debug, PartialEq)]
pub struct Plan<'r> {
    /// Sent on their own, in this order (reds first).
    pub single: Vec<&'r OutboxRow>,
    /// Merged into one digest message, sent after them.
    pub digest: Vec<&'r OutboxRow>,
    /// Left waiting for a free slot: a red is among them.
    pub red_waits: bool,
}

/// Whether a stored payload is a red order's.
pub fn is_red(row: &OutboxRow) -> bool {
    serde_json::from_str::<Value>(&row.payload)
        .is_ok_and(|p| p.get("colour").and_then(Value::as_str) == Some("red"))
}

/// Which of `rows` (outbox order) go out with `remaining` messages (`None`: all, each on its
/// own), keeping `reserve` of them for reds. Rows not in the plan wait for a free slot. One
/// order's rows share its colour, so they stay in order: singles before the digest.
pub fn plan(rows: &[OutboxRow], remaining: Option<usize>, reserve: usize) -> Plan<'_> {
    let Some(remaining) = remaining else {
        return Plan { single: rows.iter().collect(), digest: Vec::new(), red_waits: false };
    };
    let (red, other): (Vec<&OutboxRow>, Vec<&OutboxRow>) = rows.iter().partition(|r| is_red(r));
    let red_waits = red.len() > remaining;
    let mut single: Vec<&OutboxRow> = red.into_iter().take(remaining).collect();
    let left = (remaining - single.len()).saturating_sub(reserve);
    // Everything else fits in `left` messages only if the last one is a digest of the rest.
    let alone = if other.len() <= left { other.len() } else { left.saturating_sub(1) };
    single.extend(other.iter().take(alone));
    let digest = if left > 0 { other[alone..].to_vec() } else { Vec::new() };
    Plan { single, digest, red_waits }
}

/// The schema name of a digest payload.
pub const DIGEST_SCHEMA: &str = "gridsentry.digest.v1";

/// The generic digest payload of `rows`: counts by colour and by rule, and every notification's
/// own payload (`gridsentry.order.v1`) in outbox order. Its idempotency key names the outbox
/// rows it carries, so a resent digest is recognisable.
pub fn digest_payload(rows: &[&OutboxRow]) -> String {
    digest_payload_of(rows, None)
}

/// [`digest_payload`] of one incident's notifications, with the incident (id, label, counts).
pub fn digest_payload_of(rows: &[&OutboxRow], incident: Option<Value>) -> String {
    let mut by_colour: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        let p: Value =
            serde_json::from_str(&row.payload).unwrap_or_else(|_| json!({ "order_id": row.order_id }));
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        *by_colour.entry(field("colour")).or_default() += 1;
        *by_rule.entry(field("rule")).or_default() += 1;
        list.push(p);
    }
    let counts = |m: BTreeMap<String, u64>| {
        Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<_, _>>())
    };
    json!({
        "schema": DIGEST_SCHEMA,
        "idempotency_key": digest_key(rows),
        "count": rows.len(),
        "by_colour": counts(by_colour),
        "by_rule": counts(by_rule),
        "notifications": list,
        "incident": incident,
    })
    .to_string()
}

/// `digest-<first outbox id>-<last outbox id>-<count>`.
pub fn digest_key(rows: &[&OutboxRow]) -> String {
    let first = rows.iter().map(|r| r.id).min().unwrap_or(0);
    let last = rows.iter().map(|r| r.id).max().unwrap_or(0);
    format!("digest-{first}-{last}-{}", rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, order: i64, colour: &str) -> OutboxRow {
        let payload =
            json!({ "order_id": order, "colour": colour, "rule": format!("r-{colour}") }).to_string();
        OutboxRow {
            id,
            order_id: order,
            seq: 1,
            receiver: "robot".into(),
            payload,
            attempts: 0,
            last_error: None,
        }
    }

    fn ids(rows: &[&OutboxRow]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn within_the_budget_everything_goes_on_its_own_in_order() {
        let rows = [row(1, 1, "blue"), row(2, 2, "red"), row(3, 3, "yellow")];
        for (remaining, reserve) in [(Some(3), 0), (Some(10), 2)] {
            let p = plan(&rows, remaining, reserve);
            assert_eq!(ids(&p.single), [2, 1, 3], "reds first");
            assert!(p.digest.is_empty() && !p.red_waits);
        }
        assert_eq!(ids(&plan(&rows, None, 5).single), [1, 2, 3], "no limit: outbox order");
    }

    #[test]
    fn over_the_budget_reds_go_first_and_the_last_message_digests_the_rest() {
        let mut rows: Vec<OutboxRow> = (1..=40).map(|i| row(i, i, "blue")).collect();
        rows[24] = row(25, 25, "red");
        let p = plan(&rows, Some(20), 10);
        assert_eq!(&ids(&p.single)[..3], [25, 1, 2], "the red first, then the oldest");
        assert_eq!(p.single.len(), 9, "the red and 8 others, then the digest: 10 slots stay for reds");
        assert_eq!(p.digest.len(), 31, "every other one in the digest");
        assert!(p.digest.iter().all(|r| !is_red(r)));
        let sent: std::collections::HashSet<i64> = p.single.iter().chain(&p.digest).map(|r| r.id).collect();
        assert_eq!(sent.len(), 40, "nothing left out");
    }

    #[test]
    fn reds_use_the_reserve_and_are_never_digested() {
        let rows: Vec<OutboxRow> =
            (1..=5).map(|i| row(i, i, if i % 2 == 1 { "red" } else { "blue" })).collect();
        let p = plan(&rows, Some(2), 2);
        assert_eq!(ids(&p.single), [1, 3]);
        assert!(p.digest.is_empty(), "no slot left for a digest: the blues wait too");
        assert!(p.red_waits, "the third red waits for the next slot");
        let p = plan(&rows, Some(2), 0);
        assert!(p.red_waits && p.digest.is_empty());
        // Only the reserve left: reds go, the others wait.
        let p = plan(&rows, Some(3), 3);
        assert_eq!(ids(&p.single), [1, 3, 5]);
        assert!(p.digest.is_empty() && !p.red_waits);
        let blues: Vec<OutboxRow> = (1..=5).map(|i| row(i, i, "blue")).collect();
        let p = plan(&blues, Some(3), 3);
        assert!(p.single.is_empty() && p.digest.is_empty());
    }

    #[test]
    fn when_one_slot_is_left_it_carries_a_digest_of_all_the_rest() {
        let rows: Vec<OutboxRow> = (1..=3).map(|i| row(i, i, "yellow")).collect();
        let p = plan(&rows, Some(2), 0);
        assert_eq!(ids(&p.single), [1]);
        assert_eq!(ids(&p.digest), [2, 3]);
        let p = plan(&rows, Some(3), 2);
        assert!(p.single.is_empty());
        assert_eq!(ids(&p.digest), [1, 2, 3]);
    }

    #[test]
    fn the_budget_refills_as_the_window_moves() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut pace = Pace::new(Some(4), MINUTE);
        assert_eq!((pace.remaining(t0), pace.reserve()), (Some(4), 2));
        pace.spend(t0, 2);
        pace.spend(t0 + s(10), 2);
        assert_eq!(pace.remaining(t0 + s(30)), Some(0));
        assert_eq!(pace.until(t0 + s(30), 1), s(30), "the first two leave at 60 s");
        assert_eq!(pace.until(t0 + s(30), 3), s(40), "a third needs the next two gone");
        assert_eq!(pace.remaining(t0 + MINUTE), Some(2));
        assert_eq!(pace.until(t0 + MINUTE, 2), Duration::ZERO);
        assert_eq!(pace.remaining(t0 + s(70)), Some(4));
        let mut free = Pace::new(None, MINUTE);
        assert_eq!((free.remaining(t0), free.reserve(), free.until(t0, 9)), (None, 0, Duration::ZERO));
    }

    #[test]
    fn a_digest_counts_by_colour_and_rule_and_carries_every_payload() {
        let rows = [row(7, 1, "blue"), row(8, 2, "blue"), row(9, 3, "yellow")];
        let refs: Vec<&OutboxRow> = rows.iter().collect();
        let d: Value = serde_json::from_str(&digest_payload(&refs)).unwrap();
        assert_eq!(d["schema"], DIGEST_SCHEMA);
        assert_eq!(d["count"], 3);
        assert_eq!(d["by_colour"], json!({ "blue": 2, "yellow": 1 }));
        assert_eq!(d["by_rule"], json!({ "r-blue": 2, "r-yellow": 1 }));
        assert_eq!(d["notifications"].as_array().unwrap().len(), 3);
        assert_eq!(d["idempotency_key"], "digest-7-9-3");
    }

    #[test]
    fn chat_robots_read_a_digest_as_counts_and_titles_alertmanager_as_alerts() {
        use super::super::formats::{render, Format};
        let rows = [row(7, 1, "blue"), row(8, 2, "blue"), row(9, 3, "yellow")];
        let refs: Vec<&OutboxRow> = rows.iter().collect();
        let digest = digest_payload(&refs);
        let out = render(Format::Wecom, "robot", "http://robot/send?key=k", None, &digest, 0).unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        let md = v["markdown"]["content"].as_str().unwrap();
        assert!(md.contains("汇总 Digest: 3"), "{md}");
        assert!(md.contains("蓝色 BLUE 2") && md.contains("黄色 YELLOW 1"), "{md}");
        assert!(md.contains("#1 ") && md.contains("#3 "), "{md}");
        let out = render(Format::Alertmanager, "am", "http://am", None, &digest, 0).unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["alerts"].as_array().unwrap().len(), 3);
        let out = render(Format::Generic, "g", "http://g", None, &digest, 0).unwrap();
        assert_eq!(out.body, digest.as_bytes());
    }
}
