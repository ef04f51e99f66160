//! What an order event says happened: one closed set, stored and sent by name.

use super::model::State;
use serde::{Deserialize, Serialize};

/// The kind of an order event (the `event` of a webhook payload and of a [`super::Change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// A rule raised a new order.
    Raised,
    /// A rule raised again while the order was open (its condition came back).
    Reactivated,
    /// The rule's condition keeps coming and going.
    Flapping,
    /// A backfilled order's condition was seen live.
    Confirmed,
    /// A rule raised the colour, or a missed deadline moved the order up a tier.
    Escalated,
    /// A slope order's forecast failure time moved.
    Forecast,
    /// A red order's condition cleared (it stays open: red is latched).
    ConditionCleared,
    /// A reminder: still not acknowledged.
    Reminder,
    /// A person dispatched it.
    Dispatched,
    /// A responder acknowledged it.
    Acknowledged,
    /// Someone is on site.
    OnSite,
    /// Resolved, by a person or by the rule clearing (non-red orders).
    Resolved,
    /// Closed after review.
    Closed,
    /// Held back: its gateway is offline, which explains it ([`super::incidents`]).
    Inhibited,
    /// Its gateway is back and it is still open: paged now.
    Released,
}

impl OrderEventKind {
    /// Every kind.
    pub const ALL: [OrderEventKind; 15] = [
        Self::Raised,
        Self::Reactivated,
        Self::Flapping,
        Self::Confirmed,
        Self::Escalated,
        Self::Forecast,
        Self::ConditionCleared,
        Self::Reminder,
        Self::Dispatched,
        Self::Acknowledged,
        Self::OnSite,
        Self::Resolved,
        Self::Closed,
        Self::Inhibited,
        Self::Released,
    ];

    /// The name in the database, the API and webhook payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Reactivated => "reactivated",
            Self::Flapping => "flapping",
            Self::Confirmed => "confirmed",
            Self::Escalated => "escalated",
            Self::Forecast => "forecast",
            Self::ConditionCleared => "condition_cleared",
            Self::Reminder => "reminder",
            Self::Dispatched => "dispatched",
            Self::Acknowledged => "acknowledged",
            Self::OnSite => "on_site",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Inhibited => "inhibited",
            Self::Released => "released",
        }
    }

    /// Parses [`OrderEventKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a person's action that led to `state` is called.
    pub fn reached(state: State) -> Self {
        match state {
            State::Raised => Self::Raised,
            State::Dispatched => Self::Dispatched,
            State::Acknowledged => Self::Acknowledged,
            State::OnSite => Self::OnSite,
            State::Resolved => Self::Resolved,
            State::Closed => Self::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in OrderEventKind::ALL {
            assert_eq!(OrderEventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        assert_eq!(OrderEventKind::parse("escalate"), None);
    }
}
