//! The topic scheme `gs/v1/{site}/{device}/{stream}`.
//!
//! The version sits in the topic as well as in the payload so that a broker ACL or a bridge can
//! route versions apart without decoding anything. Parsing is strict (exactly five levels, known
//! stream, valid ids): a topic that does not parse is counted and dropped by the daemon, never
//! guessed at.

use crate::id::{Id, IdError, ID_MAX};
use core::fmt;

/// The fixed first two levels.
pub const PREFIX: &str = "gs/v1/";
/// Longest valid topic, in bytes.
pub const TOPIC_MAX: usize = PREFIX.len() + 2 * ID_MAX + 2 + 6;
/// Filter that matches every reading topic of this version.
pub const FILTER_ALL: &str = "gs/v1/+/+/+";

/// What a topic carries; also the InfluxDB measurement name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Plaza noise box reports.
    Noise,
    /// Wristband heart-rate reports.
    Hr,
    /// Landslide deformation channels.
    Deform,
    /// Rain gauges (cumulative rainfall).
    Rain,
    /// Birth / last-will status (retained).
    Status,
}

impl Stream {
    /// Every stream, in topic order.
    pub const ALL: [Stream; Stream::COUNT] =
        [Stream::Noise, Stream::Hr, Stream::Deform, Stream::Rain, Stream::Status];

    /// How many streams there are (sizes per-stream counters).
    pub const COUNT: usize = 5;

    /// Position in [`Stream::ALL`] (index of per-stream counters).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The topic level / measurement name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::Noise => "noise",
            Stream::Hr => "hr",
            Stream::Deform => "deform",
            Stream::Rain => "rain",
            Stream::Status => "status",
        }
    }

    /// The stream named `s`, if any.
    pub fn parse(s: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed reading topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    /// The site (plaza, home, slope) the device belongs to.
    pub site: Id,
    /// The device publishing.
    pub device: Id,
    /// What it publishes.
    pub stream: Stream,
}

/// Why a topic string is not a reading topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Longer than [`TOPIC_MAX`].
    #[error("longer than {TOPIC_MAX} bytes")]
    TooLong,
    /// Contains `+` or `#`: a filter, not a topic.
    #[error("contains an MQTT wildcard")]
    Wildcard,
    /// Does not start with `gs/v1/` (another version or another application).
    #[error("does not start with gs/v1/")]
    Prefix,
    /// Not exactly five levels.
    #[error("expected 5 levels gs/v1/site/device/stream, found {0}")]
    Levels(usize),
    /// The site level is not a valid id.
    #[error("site: {0}")]
    Site(IdError),
    /// The device level is not a valid id.
    #[error("device: {0}")]
    Device(IdError),
    /// The last level is not one of noise, hr, deform, rain, status.
    #[error("unknown stream (expected noise, hr, deform, rain or status)")]
    UnknownStream,
}

impl Topic {
    /// Builds a topic from its parts.
    pub fn new(site: Id, device: Id, stream: Stream) -> Self {
        Topic { site, device, stream }
    }

    /// Parses and validates a topic string.
    pub fn parse(s: &str) -> Result<Topic, TopicError> {
        if s.len() > TOPIC_MAX {
            return Err(TopicError::TooLong);
        }
        if s.contains(['+', '#']) {
            return Err(TopicError::Wildcard);
        }
        let rest = s.strip_prefix(PREFIX).ok_or(TopicError::Prefix)?;
        let levels = rest.split('/').count();
        if levels != 3 {
            return Err(TopicError::Levels(levels + 2));
        }
        let mut it = rest.split('/');
        let (site, device, stream) =
            (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
        Ok(Topic {
            site: Id::new(site).map_err(TopicError::Site)?,
            device: Id::new(device).map_err(TopicError::Device)?,
            stream: Stream::parse(stream).ok_or(TopicError::UnknownStream)?,
        })
    }

    /// The topic as a fixed-capacity string (no allocation; always fits).
    pub fn to_heapless(&self) -> heapless::String<TOPIC_MAX> {
        let mut s = heapless::String::new();
        // Cannot fail: TOPIC_MAX is the longest possible rendering.
        let _ = fmt::write(&mut s, format_args!("{self}"));
        s
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}/{}", self.site, self.device, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_indexes_follow_all() {
        for (i, st) in Stream::ALL.into_iter().enumerate() {
            assert_eq!(st.index(), i);
            assert_eq!(Stream::parse(st.as_str()), Some(st));
        }
    }

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn parses_a_reading_topic() {
        let t = Topic::parse("gs/v1/plaza-3/nb-01/noise").unwrap();
        assert_eq!(t, Topic::new(id("plaza-3"), id("nb-01"), Stream::Noise));
        assert_eq!(t.to_heapless().as_str(), "gs/v1/plaza-3/nb-01/noise");
    }

    #[test]
    fn rejects_malformed_topics() {
        use TopicError::*;
        let cases: &[(&str, TopicError)] = &[
            ("gs/v1/+/nb/noise", Wildcard),
            ("gs/v1/#", Wildcard),
            ("gs/v2/p/d/noise", Prefix),
            ("/gs/v1/p/d/noise", Prefix),
            ("gs/v1/p/d", Levels(4)),
            ("gs/v1/p/d/noise/x", Levels(6)),
            ("gs/v1//d/noise", Site(IdError::Empty)),
            ("gs/v1/p/$d/noise", Device(IdError::BadChar('$'))),
            ("gs/v1/p/d/Noise", UnknownStream),
            ("gs/v1/p/d/", UnknownStream),
        ];
        for (topic, want) in cases {
            assert_eq!(Topic::parse(topic), Err(*want), "{topic}");
        }
        let long = alloc_free_long();
        assert_eq!(Topic::parse(&long), Err(TooLong));
    }

    fn alloc_free_long() -> heapless::String<128> {
        let mut s = heapless::String::new();
        s.push_str("gs/v1/").unwrap();
        for _ in 0..100 {
            s.push('a').unwrap();
        }
        s
    }

    #[test]
    fn longest_valid_topic_fits() {
        let a = "a".repeat(ID_MAX);
        let t = Topic::new(id(&a), id(&a), Stream::Status);
        assert_eq!(t.to_heapless().len(), TOPIC_MAX);
        assert_eq!(Topic::parse(&t.to_heapless()).unwrap(), t);
    }
}
