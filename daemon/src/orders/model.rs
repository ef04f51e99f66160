//! Order states and the moves people may make.

use crate::rules::Colour;
use serde::Serialize;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Raised by a rule; nobody has taken it yet.
    Raised,
    /// Sent to a responder.
    Dispatched,
    /// A responder confirmed they have it.
    Acknowledged,
    /// Someone is there.
    OnSite,
    /// Handled (by a person, or by the rule clearing for non-red orders).
    Resolved,
    /// Reviewed and closed.
    Closed,
}

impl State {
    /// Every state, in order.
    pub const ALL: [State; 6] = [
        State::Raised,
        State::Dispatched,
        State::Acknowledged,
        State::OnSite,
        State::Resolved,
        State::Closed,
    ];

    /// The name used in the API, the database and the demo output.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Raised => "raised",
            State::Dispatched => "dispatched",
            State::Acknowledged => "acknowledged",
            State::OnSite => "on_site",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    /// Parses [`State::as_str`].
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still needs someone (not resolved or closed).
    pub fn is_open(self) -> bool {
        !matches!(self, State::Resolved | State::Closed)
    }
}

/// What a person can do to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send it to a responder.
    Dispatch,
    /// Confirm receipt.
    Ack,
    /// Report arrival.
    OnSite,
    /// Report it handled.
    Resolve,
    /// Close a resolved order.
    Close,
}

impl Action {
    /// Parses the API's path segment (`ack`, `dispatch`, `on-site`, `resolve`, `close`).
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "dispatch" => Action::Dispatch,
            "ack" => Action::Ack,
            "on-site" => Action::OnSite,
            "resolve" => Action::Resolve,
            "close" => Action::Close,
            _ => return None,
        })
    }

    /// The API's name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Dispatch => "dispatch",
            Action::Ack => "ack",
            Action::OnSite => "on-site",
            Action::Resolve => "resolve",
            Action::Close => "close",
        }
    }

    /// The state an action leads to from `from`, if it is allowed there.
    pub fn apply(self, from: State) -> Result<State, ActionError> {
        use State::*;
        let to = match (self, from) {
            (Action::Dispatch, Raised) => Dispatched,
            (Action::Ack, Raised | Dispatched) => Acknowledged,
            (Action::OnSite, Raised | Dispatched | Acknowledged) => OnSite,
            (Action::Resolve, s) if s.is_open() => Resolved,
            (Action::Close, Resolved) => Closed,
            _ => return Err(ActionError::NotAllowed { action: self, from }),
        };
        Ok(to)
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The action does not apply in the order's state.
    #[error("cannot {} an order that is {}", action.as_str(), from.as_str())]
    NotAllowed {
        /// The action tried.
        action: Action,
        /// The order's state.
        from: State,
    },
    /// No such order.
    #[error("no order {0}")]
    NotFound(i64),
    /// A field worker acting on an order not dispatched to them.
    #[error("order {0} is not dispatched to you")]
    NotYours(i64),
    /// `dispatch` to someone who is not an enabled person.
    #[error("cannot dispatch to `{0}`: no such person, or disabled")]
    NoSuchPerson(String),
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    /// Order id.
    pub id: i64,
    /// Rule that raised it.
    pub rule: String,
    /// `site/device[/band]`.
    pub subject: String,
    /// Site id.
    pub site: String,
    /// Device id.
    pub device: String,
    /// Current colour.
    pub colour: Colour,
    /// Current state.
    pub state: State,
    /// One line for people.
    pub summary: String,
    /// The summary in Chinese (empty for orders from before version 9).
    pub summary_zh: String,
    /// `规则名称 · 站点（街道）`: what people call it (set when listed).
    pub title: String,
    /// The order this one follows: it was resolved while its condition was still active.
    pub reraised_from: Option<i64>,
    /// The incident it belongs to (the id of the order that opened it), if it is in one.
    pub incident: Option<i64>,
    /// The gateway's offline order that holds its notifications back, while it does.
    pub inhibited_by: Option<i64>,
    /// Raised from backfilled data and never confirmed live.
    pub late: bool,
    /// The rule's condition still holds.
    pub active: bool,
    /// When it was raised, UTC ms.
    pub opened_ms: i64,
    /// Last change, UTC ms.
    pub updated_ms: i64,
    /// Transitions so far (the idempotency key of the last one is `{id}-{seq}`).
    pub seq: i64,
    /// Receiver tier notifications go to (raised by missed deadlines).
    pub tier: i64,
    /// Forecast failure time of a slope order (latest).
    pub forecast: Option<crate::rules::Forecast>,
    /// When it was raised here (wall clock, UTC ms).
    pub created_ms: i64,
    /// Deadlines run from this (wall clock, UTC ms): the raise, or the moment a rule raised its
    /// colour, or the moment a backfilled raise was confirmed live.
    pub deadlines_from_ms: i64,
    /// Deadlines missed so far (bits).
    #[serde(skip)]
    pub missed: i64,
    /// The person it was dispatched to, if any.
    pub assignee: Option<String>,
    /// Its deadlines, for open orders.
    pub due: Option<super::Due>,
}

/// One appended event of an order's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderEvent {
    /// Transition number within the order.
    pub seq: i64,
    /// When, UTC ms.
    pub at_ms: i64,
    /// What happened.
    pub kind: super::OrderEventKind,
    /// State after it.
    pub state: State,
    /// Colour after it.
    pub colour: Colour,
    /// Who: `rule:<id>`, `sla`, or the API user.
    pub who: String,
    /// Why, for people.
    pub why: String,
    /// Why, in Chinese (a person's own words are kept as written).
    pub why_zh: String,
    /// The reading that caused it (JSON), when a reading did.
    pub evidence: Option<String>,
}
