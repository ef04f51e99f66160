//! Board-independent firmware logic, `no_std` and without an allocator.
//!
//! So far this holds the device identity that stamps every reading with the wire contract's
//! header (site, device, boot id, per-boot sequence number) and names its topics. The noise
//! meter DSP, wristband gateway, outbox and MQTT session logic follow in the firmware issue.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod identity;
