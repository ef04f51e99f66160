//! MQTT for the devices: the packets ([`packet`]) and the session logic ([`session`]).

pub mod packet;
pub mod session;

pub use session::{Identity, Session, SessionError};
