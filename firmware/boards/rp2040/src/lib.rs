//! The RP2040 noise box's shared parts: both builds (`noise-box-rp2040` on Wi-Fi and
//! `noise-box-rp2040-offline` without the radio) use the same microphone code and pins.
#![no_std]

pub mod audio;
pub mod ota;
pub mod serial;
