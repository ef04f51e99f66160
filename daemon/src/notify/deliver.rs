//! Webhook delivery: one worker per receiver, so a hanging endpoint delays nobody else.
//!
//! Each POST carries the payload bytes stored with the transition, a Standard Webhooks signature
//! over id, timestamp and body ([`super::sign`]) and `Idempotency-Key: <order>-<transition>`.
//! Redirects are not followed (a 3xx is a failed attempt: following one would turn the POST
//! into a GET, or send an order to wherever the receiver points), and at most
//! [`RESPONSE_MAX`] bytes of an answer are read. Failures
//! back off exponentially with jitter up to a cap; five failures in a row open the endpoint's
//! circuit for a cool-down (one probe request then decides); after `max_attempts` a
//! notification becomes a dead letter, is copied to the fallback receiver if there is one, and
//! stays listed for an operator to replay.

use super::failure::Failure;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::orders::{OutboxRow, SlaTable, Store, StoreError, Which};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Notifications claimed per round (one write records the round's deliveries).
const ROUND: usize = 64;
/// Notifications one digest carries at most (a rate-limited receiver claims this many others).
const DIGEST_MAX: usize = 2_000;
/// Requests in flight per receiver at most.
const PARALLEL: usize = 16;

/// A receiver ready to deliver to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name (outbox rows refer to it).
    pub name: String,
    /// URL to POST to.
    pub url: String,
    /// What it speaks.
    pub format: super::Format,
    /// HMAC key (and the robot's signing secret for DingTalk and Feishu).
    pub secret: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts before a dead letter.
    pub max_attempts: u32,
    /// Receiver that gets a copy of dead letters.
    pub fallback: Option<String>,
    /// Evidence fields left out (`stream.field`).
    pub redact: Vec<String>,
    /// Messages per minute at most (`None`: no limit); beyond it, digests ([`super::pace`]).
    pub max_per_minute: Option<u32>,
}

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First retry delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Consecutive failures that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before a probe.
    pub breaker_cooldown: Duration,
    /// The window a receiver's `max_per_minute` counts in (a minute; tests shorten it).
    pub rate_window: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            rate_window: super::pace::MINUTE,
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempts + 1`: base·2^attempts, capped, times a jitter in [0.5, 1].
    pub fn delay(&self, attempts: i64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempts.clamp(0, 20) as u32).min(self.cap);
        exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// Most bytes of a receiver's answer read (chat robots answer with a small JSON object).
pub const RESPONSE_MAX: usize = 64 * 1024;

/// The HTTP client of the delivery workers: no redirects, no proxy surprises from the
/// environment beyond reqwest's defaults.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client without redirects builds")
}

/// Where the outbox is.
#[derive(Debug, Clone)]
pub enum Source {
    /// The edge gateway's SQLite file.
    Sqlite(std::path::PathBuf),
    /// Cluster mode's PostgreSQL (every worker delivers; rows are claimed, never shared): the
    /// connection string and the session name (the worker's).
    Postgres(String, String),
}

impl Source {
    pub(crate) fn open(&self) -> Result<Store, StoreError> {
        match self {
            Source::Sqlite(path) => Store::open(path, SlaTable::default(), Vec::new()),
            // On a thread of its own: the PostgreSQL client runs its own runtime, which cannot
            // start on a thread that drives this one.
            Source::Postgres(url, name) => std::thread::scope(|s| {
                s.spawn(|| Store::connect_as(url, name, SlaTable::default(), Vec::new()))
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Corrupt("connecting panicked".into())))
            }),
        }
    }
}

/// Runs `f` on the store behind `store`; with `blocking` (a PostgreSQL client, which blocks the
/// thread) off the async worker first. The lock is never held across an await.
pub(crate) fn locked<R>(
    store: &std::sync::Mutex<Store>,
    blocking: bool,
    f: impl FnOnce(&mut Store) -> R,
) -> R {
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    if blocking {
        tokio::task::block_in_place(|| f(&mut store))
    } else {
        f(&mut store)
    }
}

/// Spawns one delivery worker per endpoint.
pub fn spawn(
    endpoints: Vec<Endpoint>,
    db: Source,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StoreError> {
    let mut tasks = Vec::new();
    for ep in endpoints {
        let store = std::sync::Mutex::new(db.open()?);
        let blocking = matches!(db, Source::Postgres(..));
        let pace = super::pace::Pace::new(ep.max_per_minute, backoff.rate_window);
        let worker = Worker {
            ep,
            store,
            blocking,
            backoff,
            metrics: metrics.clone(),
            failures: 0,
            http: client(),
            pace,
            paced: super::incident::Paced::default(),
        };
        tasks.push(tokio::spawn(worker.run(wake.clone(), shutdown.clone())));
    }
    Ok(tasks)
}

struct Worker {
    ep: Endpoint,
    /// Locked only around synchronous calls, never across an await.
    store: std::sync::Mutex<Store>,
    /// The store's client blocks the thread (PostgreSQL): calls leave the async worker first.
    blocking: bool,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    failures: u32,
    http: reqwest::Client,
    /// Messages sent in the last minute (the receiver's rate limit).
    pace: super::pace::Pace,
    /// When each incident's last message went ([`super::incident`]).
    paced: super::incident::Paced,
}

impl Worker {
    async fn run(mut self, mut wake: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.round().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(receiver = %self.ep.name, error = %e, "outbox unreadable; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers what is due; returns how long to wait before the next round.
    async fn round(&mut self) -> Result<Duration, StoreError> {
        // Claimed for twice the timeout: another worker delivering from the same outbox skips
        // them, and gets them if this one dies mid-delivery.
        let claim = self.ep.timeout.as_millis() as i64 * 2;
        // After a cool-down the circuit is half open: one probe decides.
        let probing = self.failures >= self.backoff.breaker_failures;
        let remaining = self.pace.remaining(Instant::now());
        if remaining == Some(0) {
            // The receiver's minute is used up: what is due stays pending until a slot frees.
            return Ok(self.pace.until(Instant::now(), 1).max(Duration::from_millis(10)));
        }
        let limit = if probing { 1 } else { ROUND };
        let now = now_ms() as i64;
        let name = &self.ep.name;
        let reserve = self.pace.reserve();
        // `held_back`: the others were not even read (no slot for them this round).
        let (rows, more, held_back) = match remaining {
            // Rate-limited: reds first (a red behind a storm's first rows must not wait for a
            // later round), then, if a slot is left for them, every other due one: they may all
            // go out in one digest.
            Some(left) if !probing => {
                let mut rows = self.with_db(|s| s.claim_due_for(name, now, ROUND, claim, Which::Red))?;
                let reds = rows.len();
                let others = left.saturating_sub(reds) > reserve;
                if others {
                    rows.extend(
                        self.with_db(|s| s.claim_due_for(name, now, DIGEST_MAX, claim, Which::NotRed))?,
                    );
                }
                let more = reds == ROUND || rows.len() - reds == DIGEST_MAX;
                rows.sort_by_key(|r| r.id);
                (rows, more, !others)
            }
            _ => {
                let rows = self.with_db(|s| s.claim_due_for(name, now, limit, claim, Which::All))?;
                let more = rows.len() == limit;
                (rows, more, false)
            }
        };
        let rows = self.hold_silenced(rows)?;
        // An incident's notifications go as its message when it is due, else wait for it.
        let (mut rows, mut incidents) = self.by_incident(rows, now, claim)?;
        if !incidents.is_empty() {
            // A red committed while the incidents' rows were claimed goes before them too (an
            // incident message never carries an order raised after a red still waiting).
            let name = self.ep.name.clone();
            let late = self.with_db(|s| s.claim_due_for(&name, now_ms() as i64, ROUND, claim, Which::Red))?;
            for row in self.hold_silenced(late)? {
                if !rows.iter().any(|r| r.id == row.id) {
                    rows.push(row);
                }
            }
            rows.sort_by_key(|r| r.id);
        }
        let plan = super::pace::plan(&rows, remaining, reserve);
        let mut messages = plan.single.len() + usize::from(!plan.digest.is_empty());
        // Incident messages take what is left beyond the reserve (red first, always).
        let room = remaining.map_or(usize::MAX, |r| r.saturating_sub(messages).saturating_sub(reserve));
        let waiting_incidents = incidents.len() > room;
        incidents.truncate(room);
        messages += incidents.len();
        let mut delivered = Vec::with_capacity(rows.len());
        let mut breaker_open = false;
        // (row, result, whether it was a request of its own: one failed digest is one failure
        // for the circuit breaker, not one per notification in it).
        let mut results: Vec<_> =
            self.post_all(&plan.single).await.into_iter().map(|(r, x)| (r, x, true)).collect();
        for (id, every, group) in &incidents {
            // After the singles (reds among them), before any other digest.
            let first = self.paced.first(*id);
            self.paced.sent(*id, *every, Instant::now());
            let result = match group.as_slice() {
                [one] => self.post(one).await,
                _ => self.post_incident(*id, first, group).await,
            };
            if result.is_ok() && group.len() > 1 {
                self.metrics.webhooks_digested.fetch_add(group.len() as u64, Relaxed);
                self.metrics.webhook_digests.fetch_add(1, Relaxed);
            }
            results.extend(group.iter().enumerate().map(|(i, row)| (row, result.clone(), i == 0)));
        }
        if !plan.digest.is_empty() {
            // After the singles (reds among them): a digest never goes before a red.
            let result = self.post_digest(&plan.digest).await;
            if result.is_ok() {
                self.metrics.webhooks_digested.fetch_add(plan.digest.len() as u64, Relaxed);
                self.metrics.webhook_digests.fetch_add(1, Relaxed);
                tracing::info!(receiver = %self.ep.name, notifications = plan.digest.len(), "rate limit reached: notifications sent as one digest");
            }
            results.extend(plan.digest.iter().enumerate().map(|(i, row)| (*row, result.clone(), i == 0)));
        }
        self.pace.spend(Instant::now(), messages);
        for (row, result, request) in results {
            match result {
                Ok(()) => {
                    self.failures = 0;
                    delivered.push(row.id);
                }
                Err(Failure::Local(e)) => {
                    // Not the receiver's fault: no attempt spent, the circuit stays as it is.
                    self.metrics.webhooks_local_errors.fetch_add(u64::from(request), Relaxed);
                    tracing::warn!(receiver = %self.ep.name, order = row.order_id, cause = %e, "webhook not sent: a problem on this machine; retrying in 1 s without spending an attempt");
                    let next = now_ms() as i64 + 1000;
                    self.with_db(|s| s.postpone(row.id, next, &format!("local: {e}")))?;
                }
                Err(Failure::Receiver(e)) => {
                    self.failures += u32::from(request);
                    self.metrics.webhooks_failed.fetch_add(u64::from(request), Relaxed);
                    self.failed(row, &e)?;
                    if self.failures >= self.backoff.breaker_failures && !breaker_open {
                        tracing::warn!(receiver = %self.ep.name, "circuit open after {} failures", self.failures);
                        breaker_open = true;
                    }
                }
            }
        }
        // One write per round, not per delivery: fewer fsyncs competing with the pipeline's
        // commits. A crash before it re-sends these under the same idempotency keys.
        self.with_db(|s| s.delivered(&delivered))?;
        self.metrics.webhooks_delivered.fetch_add(delivered.len() as u64, Relaxed);
        if breaker_open {
            return Ok(self.backoff.breaker_cooldown);
        }
        if plan.single.len() + plan.digest.len() < rows.len() || waiting_incidents {
            // Some wait for a free slot (what is due stays pending; a new red wakes this worker).
            let need = if plan.red_waits { 1 } else { reserve + 1 };
            return Ok(self
                .pace
                .until(Instant::now(), need)
                .clamp(Duration::from_millis(10), Duration::from_secs(1)));
        }
        if more {
            return Ok(Duration::ZERO);
        }
        if held_back {
            // The others wait for a slot beyond the reserve; a new red wakes this worker, one
            // coming due for a retry is looked for within a second.
            return Ok(self
                .pace
                .until(Instant::now(), reserve + 1)
                .clamp(Duration::from_millis(10), Duration::from_secs(1)));
        }
        let next = self.with_db(|s| s.next_outbox_ms_for(&self.ep.name))?;
        let now = now_ms() as i64;
        Ok(next.map_or(Duration::from_secs(1), |n| {
            Duration::from_millis(n.saturating_sub(now).clamp(0, 1000) as u64)
        }))
    }

    /// The rows outside incidents (red ones among them), and the incidents whose message is
    /// due now, each with every due notification of it; the others' notifications are
    /// postponed to their incident's next digest.
    fn by_incident(
        &mut self,
        rows: Vec<OutboxRow>,
        now: i64,
        claim: i64,
    ) -> Result<(Vec<OutboxRow>, Vec<super::incident::Group>), StoreError> {
        let (rest, groups) = super::incident::split(rows);
        let mut due = Vec::with_capacity(groups.len());
        let at = Instant::now();
        for (id, every, mut group) in groups {
            match self.paced.next(id, at) {
                Some(next) => {
                    let ids: Vec<i64> = group.iter().map(|r| r.id).collect();
                    let next = now + next.saturating_duration_since(at).as_millis() as i64;
                    let why = format!("incident {id}: waits for its next digest");
                    self.with_db(|s| s.postpone_all(&ids, next, &why))?;
                }
                None => {
                    let name = &self.ep.name;
                    let more =
                        self.with_db(|s| s.claim_due_for(name, now, DIGEST_MAX, claim, Which::Incident(id)))?;
                    // A silence holds these as it holds the round's others.
                    for row in self.hold_silenced(more)? {
                        if !group.iter().any(|r| r.id == row.id) {
                            group.push(row);
                        }
                    }
                    group.sort_by_key(|r| r.id);
                    due.push((id, every, group));
                }
            }
        }
        Ok((rest, due))
    }

    /// Records the rows a silence in force holds as `silenced` (not sent); the others.
    fn hold_silenced(&mut self, rows: Vec<OutboxRow>) -> Result<Vec<OutboxRow>, StoreError> {
        if rows.is_empty() {
            return Ok(rows);
        }
        // Read each round (a small indexed table): a silence holds from the moment it is added,
        // whoever added it (the API here, the CLI in another process).
        let now = now_ms() as i64;
        let silences = self.with_db(|s| s.silences_active(now))?;
        if silences.is_empty() {
            return Ok(rows);
        }
        let (mut send, mut held) = (Vec::with_capacity(rows.len()), Vec::new());
        for row in rows {
            let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
            match silences.iter().find(|s| s.silences(&payload, now)) {
                Some(s) => held.push((
                    row.id,
                    format!(
                        "silence {} ({}={}, by {}): {}",
                        s.id, s.matcher.field, s.matcher.value, s.who, s.reason
                    ),
                )),
                None => send.push(row),
            }
        }
        if !held.is_empty() {
            self.with_db(|s| s.silenced(&held))?;
            self.metrics.webhooks_silenced.fetch_add(held.len() as u64, Relaxed);
            tracing::info!(receiver = %self.ep.name, notifications = held.len(), "notifications silenced (recorded, not sent)");
        }
        Ok(send)
    }

    /// Posts `rows` (in outbox order): the notifications of one order one after another (a
    /// receiver hears `raised` before `resolved`), different orders' concurrently, up to
    /// [`PARALLEL`] at a time — one slow round trip no longer paces a storm's notifications.
    /// The results in outbox order.
    async fn post_all<'r>(&self, rows: &[&'r OutboxRow]) -> Vec<(&'r OutboxRow, Result<(), Failure>)> {
        use futures_util::StreamExt;
        let mut groups: Vec<Vec<&OutboxRow>> = Vec::new();
        let mut of_order = std::collections::HashMap::new();
        for &row in rows {
            let g = *of_order.entry(row.order_id).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(row);
        }
        let mut results = Vec::with_capacity(rows.len());
        let mut groups = groups.into_iter();
        let mut pending = futures_util::stream::FuturesUnordered::new();
        pending.extend(groups.by_ref().take(PARALLEL).map(|g| self.post_group(g)));
        while let Some(done) = pending.next().await {
            results.extend(done);
            pending.extend(groups.next().map(|g| self.post_group(g)));
        }
        results.sort_by_key(|(row, _)| row.id);
        results
    }

    /// Posts one order's notifications, one after another.
    async fn post_group<'r>(&self, group: Vec<&'r OutboxRow>) -> Vec<(&'r OutboxRow, Result<(), Failure>)> {
        let mut out = Vec::with_capacity(group.len());
        for row in group {
            out.push((row, self.post(row).await));
        }
        out
    }

    fn with_db<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        locked(&self.store, self.blocking, f)
    }

    fn failed(&mut self, row: &OutboxRow, error: &str) -> Result<(), StoreError> {
        let now = now_ms() as i64;
        if row.attempts + 1 >= i64::from(self.ep.max_attempts) {
            tracing::error!(receiver = %self.ep.name, order = row.order_id, transition = row.seq, %error, "notification dead-lettered");
            self.with_db(|s| s.dead(row.id, error))?;
            self.metrics.webhooks_dead.fetch_add(1, Relaxed);
            if let Some(fallback) = &self.ep.fallback {
                self.with_db(|s| s.reroute(row, fallback, now))?;
            }
        } else {
            let next = now + self.backoff.delay(row.attempts).as_millis() as i64;
            tracing::warn!(receiver = %self.ep.name, order = row.order_id, attempt = row.attempts + 1, %error, "webhook failed; retrying");
            self.with_db(|s| s.retry_at(row.id, next, error))?;
        }
        Ok(())
    }

    async fn post(&self, row: &OutboxRow) -> Result<(), Failure> {
        let payload = super::redact::evidence(&row.payload, &self.ep.redact);
        self.send(&format!("{}-{}", row.order_id, row.seq), &payload).await
    }

    /// One message carrying `rows` ([`super::pace::digest_payload`], each redacted as on its own).
    async fn post_digest(&self, rows: &[&OutboxRow]) -> Result<(), Failure> {
        let redacted: Vec<OutboxRow> = rows
            .iter()
            .map(|r| OutboxRow {
                payload: super::redact::evidence(&r.payload, &self.ep.redact).into_owned(),
                ..(*r).clone()
            })
            .collect();
        let refs: Vec<&OutboxRow> = redacted.iter().collect();
        self.send(&super::pace::digest_key(&refs), &super::pace::digest_payload(&refs)).await
    }

    /// One message carrying an incident's notifications: a digest naming the incident, with
    /// its counts now.
    async fn post_incident(&self, id: i64, first: bool, rows: &[OutboxRow]) -> Result<(), Failure> {
        let incident = self.with_db(|s| s.incident(id)).map_err(|e| Failure::Local(e.to_string()))?;
        let info = incident.map(|i| {
            serde_json::json!({
                "id": i.id, "key": i.key, "label": i.label, "mass_offline": i.mass_offline,
                "orders": i.orders, "offline": i.offline, "open": i.open, "red": i.red, "first": first,
            })
        });
        let redacted: Vec<OutboxRow> = rows
            .iter()
            .map(|r| OutboxRow {
                payload: super::redact::evidence(&r.payload, &self.ep.redact).into_owned(),
                ..r.clone()
            })
            .collect();
        let refs: Vec<&OutboxRow> = redacted.iter().collect();
        let payload = super::pace::digest_payload_of(&refs, info);
        self.send(&super::pace::digest_key(&refs), &payload).await
    }

    /// POSTs `payload` (generic JSON, rendered for the receiver's format) under idempotency key `id`.
    async fn send(&self, id: &str, payload: &str) -> Result<(), Failure> {
        let ep = &self.ep;
        let secret = ep.secret.as_deref();
        let now = now_ms();
        let out = super::formats::render(ep.format, &ep.name, &ep.url, secret, payload, now)
            .map_err(Failure::Receiver)?;
        let mut request = self
            .http
            .post(&out.url)
            .timeout(ep.timeout)
            .header("content-type", "application/json")
            .header("idempotency-key", id);
        if let Some(secret) = secret {
            let ts = now / 1000;
            request = request
                .header("webhook-signature", super::sign::signature(secret, id, ts, &out.body))
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string());
        }
        let mut response = request.body(out.body).send().await.map_err(Failure::of)?;
        let status = response.status();
        if status.is_redirection() {
            let to = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("?");
            let to = super::urls::redacted(to);
            return Err(Failure::Receiver(format!("HTTP {} redirect to {to} not followed", status.as_u16())));
        }
        let mut body = Vec::new();
        while body.len() < RESPONSE_MAX {
            match tokio::time::timeout(ep.timeout, response.chunk()).await {
                Ok(Ok(Some(c))) => body.extend_from_slice(&c[..c.len().min(RESPONSE_MAX - body.len())]),
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    return Err(Failure::Receiver(format!("reading the answer: {}", e.without_url())))
                }
                Err(_) => return Err(Failure::Receiver("timeout reading the answer".into())),
            }
        }
        super::formats::accepted(ep.format, status.as_u16(), &body).map_err(Failure::Receiver)
    }
}
