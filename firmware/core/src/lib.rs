//! Board-independent firmware logic, `no_std` and without an allocator.
//!
//! - [`identity`]: the wire contract's header (site, device, boot id, per-boot sequence).
//! - [`noise`]: the plaza noise meter (A-weighting, time weighting, LAeq/L10/L90), fixed-point
//!   for chips without an FPU and f32 for chips with one.
//! - [`alarm`]: the box's own buzzer, independent of the network.
//! - [`noise_box`]: the noise box's loop without pins (a [`noise_box::Board`] drives them).
//! - [`ota`]: fleet updates: offers, chunks by offset into the second slot with a progress record
//!   that survives power cuts, signature check before the trial boot, confirm or revert.
//! - [`settings`]: the device's own settings, read from a flash sector at start (checked).
//! - [`outbox`]: the store-and-forward ring that keeps readings while the broker is away.
//! - [`mqtt`]: MQTT 3.1.1 packets and the session (birth, will, QoS 1 resend, keep-alive), no I/O.
//! - [`sntp`]: the time server request and the checks on its reply, no I/O.
//! - [`uplink`]: what a board's network task needs around the session (topics, will, birth with
//!   the drop count, payload encoding), still without I/O.
//! - [`wristband`]: the home gateway: BLE heart-rate notifications and adverts → batched readings.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarm;
pub mod identity;
pub mod mqtt;
pub mod noise;
pub mod noise_box;
pub mod ota;
pub mod outbox;
pub mod settings;
pub mod sntp;
pub mod uplink;
pub mod wristband;
