//! Work orders: the durable record of what needs a person.
//!
//! One open order per (rule, subject). States run raised → dispatched → acknowledged → on_site
//! → resolved → closed; a rule's clear resolves a non-red order by itself, while a red order is
//! latched: it stays open after the reading recovers until a person resolves it. Every
//! transition is an appended event (who, when, why, evidence) and, in the same SQLite
//! transaction, outbox rows for the notifier, so nothing is announced that was not recorded and
//! nothing recorded goes unannounced. Rule state and per-device sequence numbers are written in
//! that transaction too: a crash loses nothing that was acknowledged to the broker.

mod act;
pub mod audit;
mod db;
pub mod hj212;
pub mod incidents;
mod kind;
mod model;
mod names;
pub mod ota;
mod outbox;
mod partitions;
mod payload;
pub mod people;
mod pg_tls;
mod postgres;
mod reraise;
mod retention;
mod rows;
mod schema;
pub mod silences;
mod sla;
mod sqlite;
mod store;
mod transition;
pub mod warnings;

pub use act::Act;
pub use audit::{AuditRow, Entry as AuditEntry};
pub use incidents::{Grouping, Incident};
pub use kind::OrderEventKind;
pub use model::{Action, ActionError, Order, OrderEvent, State};
pub use names::Names;
pub use outbox::{OutboxRow, Which};
pub use partitions::Taken;
pub use payload::{payload, SCHEMA};
pub use pg_tls::PgConnect;
pub use postgres::migrate_as_owner;
pub use retention::Purged;
pub use sla::{Due, Sla, SlaTable};
pub use store::{Batch, Change, Filter, Receiver, Scope, Store, StoreError};
