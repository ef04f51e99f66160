//! Notify: delivers the outbox to webhook receivers.
//!
//! The payload is built when the transition is recorded (in the same transaction), so a
//! redelivery after a crash sends the very same bytes with the same idempotency key.

pub mod deliver;
mod payload;

pub use payload::{payload, SCHEMA};
