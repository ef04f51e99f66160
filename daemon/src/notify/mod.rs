//! Notify: delivers the outbox to webhook receivers.
//!
//! The payload is built when the transition is recorded (in the same transaction), so a
//! redelivery after a crash sends the very same bytes with the same idempotency key.

pub mod deliver;
pub mod formats;
mod payload;
pub mod redact;
pub mod sign;

pub use formats::Format;
pub use payload::{payload, SCHEMA};
