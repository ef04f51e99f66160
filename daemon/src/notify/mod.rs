//! Notify: delivers the outbox to webhook receivers.
//!
//! The payload is built by the order store when the transition is recorded (in the same
//! transaction, `orders::payload`), so a redelivery after a crash sends the very same bytes with
//! the same idempotency key.

pub mod deliver;
mod failure;
pub mod formats;
pub mod incident;
pub mod pace;
pub mod redact;
pub mod sign;
pub mod urls;

pub use crate::orders::{payload, SCHEMA};
pub use formats::Format;
