//! The reading log on NATS JetStream: subjects, message ids, the stream's settings.
//!
//! The relay publishes a reading to `gs.in.SITE.DEVICE.STREAM` with the device's payload bytes
//! unchanged and `Nats-Msg-Id: SITE/DEVICE/BOOT/SEQ`: a re-publish of the same reading within
//! the stream's duplicate window (the relay retrying, or a device resending after the relay died
//! before its MQTT ack) is dropped by the server. nats-server maps the subject to
//! `gs.p.P.SITE.DEVICE.STREAM` with `P = partition(K, SITE)`, so one site's devices (and the
//! rules that corroborate across them) stay in one partition, and the stream `GS_READINGS`
//! keeps `gs.p.>` on file, replicated. Ids may contain `.`, NATS's token separator: it is written
//! `~` in subjects (`~` cannot occur in an id).

use super::ClusterError;
use async_nats::jetstream::{self, stream};
use gridsentry_sensors::Topic;
use std::time::Duration;

/// The stream's name.
pub const STREAM: &str = "GS_READINGS";
/// How long a message id is remembered for de-duplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

fn token(id: &str) -> String {
    id.replace('.', "~")
}

fn untoken(t: &str) -> String {
    t.replace('~', ".")
}

/// Where the relay publishes a reading of `topic`.
pub fn in_subject(topic: &Topic) -> String {
    format!("gs.in.{}.{}.{}", token(topic.site.as_str()), token(topic.device.as_str()), topic.stream.as_str())
}

/// The subjects of partition `p`.
pub fn partition_filter(p: u32) -> String {
    format!("gs.p.{p}.>")
}

/// The topic a partitioned subject (`gs.p.P.SITE.DEVICE.STREAM`) stands for, with P.
pub fn parse_partitioned(subject: &str) -> Option<(u32, String)> {
    let mut t = subject.split('.');
    let (Some("gs"), Some("p"), Some(p), Some(site), Some(device), Some(stream), None) =
        (t.next(), t.next(), t.next(), t.next(), t.next(), t.next(), t.next())
    else {
        return None;
    };
    Some((p.parse().ok()?, format!("gs/v1/{}/{}/{stream}", untoken(site), untoken(device))))
}

/// The de-duplication id of a message (JetStream drops a second message with the same id
/// within its duplicate window): `site/device/boot/seq/stream` for a reading, the same reading
/// always gets the same id (a device's status messages number apart from its readings).
///
/// A status message is different: a device's birth (online) and last will (offline) carry the
/// same boot and sequence number every time within a boot (they are encoded once), so a device
/// whose link flaps sends the same id again and again, and the second "offline" within the
/// window would be dropped: no order for a wristband gateway that went offline again. Its id
/// adds the state and the second it was received: the same publish seen by two relays (or
/// redelivered after a relay crash within the second) is one message; a later change is a new
/// one. A status repeated across a second boundary is applied twice, which is harmless (a
/// device already offline stays offline).
pub fn msg_id(m: &crate::flow::Inbound) -> String {
    let h = &m.reading.header;
    let id = format!(
        "{}/{}/{}/{}/{}",
        h.site.as_str(),
        h.device.as_str(),
        h.boot_id,
        h.seq,
        m.topic.stream.as_str()
    );
    match &m.reading.body {
        gridsentry_sensors::Body::Status(s) => format!("{id}/{:?}/{}", s.state, m.received_ms / 1000),
        _ => id,
    }
}

/// The partition nats-server's `partition(k, 1)` mapping gives a subject whose site token is
/// `site_token` (as written in subjects, `.` → `~`): FNV-1a-32 of the token, modulo `k`.
pub fn partition_of(site_token: &str, k: u32) -> u32 {
    let h = site_token.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    h % k.max(1)
}

/// Whether a partitioned subject sits in the partition its site maps to: a message published
/// straight onto another partition's subject (bypassing the mapping) is not.
pub fn rightly_placed(subject: &str, k: u32) -> bool {
    let mut t = subject.split('.').skip(2);
    match (t.next().and_then(|p| p.parse::<u32>().ok()), t.next()) {
        (Some(p), Some(site)) => partition_of(site, k) == p,
        _ => false,
    }
}

/// The stream's last sequence number among partition `p`'s subjects (0: none yet): the
/// partition's head, against which a worker measures how far behind it is.
pub async fn head(stream: &stream::Stream, p: u32) -> Result<u64, ClusterError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match stream.get_last_raw_message_by_subject(&partition_filter(p)).await {
        Ok(m) => Ok(m.sequence),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(0),
        Err(e) => Err(ClusterError::Nats(format!("partition {p} head: {e}"))),
    }
}

/// Waits (up to `patience`) for the stream to exist: a relay does not create it (its NATS user
/// may not: the workers' does).
pub async fn wait_for(js: &jetstream::Context, patience: Duration) -> Result<stream::Stream, ClusterError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match js.get_stream(STREAM).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "stream {STREAM} not there yet (a worker creates it); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(ClusterError::Nats(format!("stream {STREAM}: {e}"))),
        }
    }
}

/// Creates the stream if it does not exist (relays and workers all call it; the first wins).
/// While the NATS cluster is still electing its JetStream leader (all nodes starting together)
/// the request times out: it is tried again, every second, for `patience`.
pub async fn ensure(
    js: &jetstream::Context,
    replicas: usize,
    keep_days: u32,
    patience: Duration,
) -> Result<stream::Stream, ClusterError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match try_ensure(js, replicas, keep_days).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "jetstream not ready; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn try_ensure(
    js: &jetstream::Context,
    replicas: usize,
    keep_days: u32,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: STREAM.into(),
        subjects: vec!["gs.p.>".into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: Duration::from_secs(u64::from(keep_days) * 86_400),
        retention: stream::RetentionPolicy::Limits,
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|e| ClusterError::Nats(format!("stream {STREAM}: {e}")))
}

/// Stream subjects whose partition is `partitions` or more: readings no worker will read,
/// because nats-server's `partition(K, …)` mapping uses a larger K than `[cluster] partitions`.
pub async fn unread_subjects(js: &jetstream::Context, partitions: u32) -> Result<Vec<String>, ClusterError> {
    use futures_util::StreamExt;
    let stream = js.get_stream(STREAM).await.map_err(|e| ClusterError::Nats(e.to_string()))?;
    let mut subjects =
        stream.info_with_subjects("gs.p.*.>").await.map_err(|e| ClusterError::Nats(e.to_string()))?;
    let mut unread = Vec::new();
    while let Some(item) = subjects.next().await {
        let (subject, _) = item.map_err(|e| ClusterError::Nats(e.to_string()))?;
        if parse_partitioned(&subject).is_some_and(|(p, _)| p >= partitions) {
            unread.push(subject);
        }
    }
    Ok(unread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_ids_with_dots() {
        let topic = Topic::parse("gs/v1/plaza.3/nb-01/noise").unwrap();
        assert_eq!(in_subject(&topic), "gs.in.plaza~3.nb-01.noise");
        assert_eq!(
            parse_partitioned("gs.p.5.plaza~3.nb-01.noise"),
            Some((5, "gs/v1/plaza.3/nb-01/noise".to_string()))
        );
        assert_eq!(parse_partitioned("gs.p.x.a.b.noise"), None);
        assert_eq!(parse_partitioned("gs.p.1.a.b"), None);
        assert_eq!(parse_partitioned("gs.p.1.a.b.noise.extra"), None);
    }

    #[test]
    fn partitions_match_nats_servers_mapping() {
        // FNV-1a-32 reference values: "" → 0x811c9dc5, "a" → 0xe40c292c.
        assert_eq!(partition_of("", u32::MAX), 0x811c_9dc5);
        assert_eq!(partition_of("a", u32::MAX), 0xe40c_292c);
        let p = partition_of("plaza~3", 8);
        assert!(rightly_placed(&format!("gs.p.{p}.plaza~3.nb-01.noise"), 8));
        assert!(!rightly_placed(&format!("gs.p.{}.plaza~3.nb-01.noise", (p + 1) % 8), 8));
        assert!(!rightly_placed("gs.p.x.plaza.nb.noise", 8));
    }

    proptest::proptest! {
        /// Every device's topic comes back from its partitioned subject (NATS maps
        /// `gs.in.S.D.X` to `gs.p.P.S.D.X`), whatever dots its ids hold.
        #[test]
        fn any_topic_round_trips(site in "[A-Za-z0-9._-]{1,32}", device in "[A-Za-z0-9._-]{1,32}",
                                 stream in 0..gridsentry_sensors::Stream::ALL.len(), p in 0u32..4096) {
            let topic = Topic::new(
                gridsentry_sensors::Id::new(&site).unwrap(),
                gridsentry_sensors::Id::new(&device).unwrap(),
                gridsentry_sensors::Stream::ALL[stream],
            );
            let subject = format!("gs.p.{p}.{}", &in_subject(&topic)["gs.in.".len()..]);
            proptest::prop_assert_eq!(parse_partitioned(&subject), Some((p, topic.to_string())));
        }

        /// Whatever else arrives on the stream is refused or read, never a panic.
        #[test]
        fn any_subject_is_safe(subject in "(gs\\.p\\.)?[a-z0-9~.>*-]{0,40}") {
            if let Some((_, topic)) = parse_partitioned(&subject) {
                proptest::prop_assert!(topic.starts_with("gs/v1/"));
            }
        }
    }
}
