//! Who this device is, and the per-boot sequence that makes gaps and replays detectable.
//!
//! The daemon uses (boot id, sequence number) to spot lost readings and to apply a redelivered
//! reading only once, so the numbering lives in one place: every reading's header comes from
//! [`Identity::next_header`], never from hand-built structs.

use gridsentry_sensors::{Body, Header, Id, Reading, Stream, Timestamp, Topic};

/// A device's identity for one boot.
#[derive(Debug, Clone)]
pub struct Identity {
    site: Id,
    device: Id,
    boot_id: u32,
    next_seq: u32,
}

impl Identity {
    /// `boot_id` must differ between boots (a hardware random number, or a counter kept in
    /// flash); the sequence starts at 0.
    pub fn new(site: Id, device: Id, boot_id: u32) -> Self {
        Identity { site, device, boot_id, next_seq: 0 }
    }

    /// This boot's id.
    pub fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// The header for the next reading; each call takes the next sequence number.
    pub fn next_header(&mut self, time: Timestamp) -> Header {
        let seq = self.take_seq();
        self.header(seq, time, false)
    }

    /// Takes the next sequence number (for a reading stored now and built when sent).
    pub fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// The header of reading `seq` (taken earlier) at `time`.
    pub fn header(&self, seq: u32, time: Timestamp, historical: bool) -> Header {
        Header {
            site: self.site.clone(),
            device: self.device.clone(),
            boot_id: self.boot_id,
            seq,
            time,
            historical,
        }
    }

    /// A new reading of `body` at `time`.
    pub fn reading(&mut self, time: Timestamp, body: Body) -> Reading {
        Reading { header: self.next_header(time), body }
    }

    /// The topic this device publishes `stream` on.
    pub fn topic(&self, stream: Stream) -> Topic {
        Topic::new(self.site.clone(), self.device.clone(), stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridsentry_sensors::codec::{decode, encode, Format, JSON_MAX};
    use gridsentry_sensors::{DeviceState, StatusReport};

    fn identity() -> Identity {
        Identity::new(Id::new("plaza-3").unwrap(), Id::new("nb-01").unwrap(), 0xDEAD_BEEF)
    }

    #[test]
    fn sequence_numbers_count_up_per_boot() {
        let mut id = identity();
        let seqs: [u32; 3] = core::array::from_fn(|_| id.next_header(Timestamp::Unsynced(0)).seq);
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(id.next_header(Timestamp::Utc(1)).boot_id, 0xDEAD_BEEF);
    }

    #[test]
    fn sequence_wraps_instead_of_panicking() {
        let mut id = identity();
        id.next_seq = u32::MAX;
        assert_eq!(id.next_header(Timestamp::Utc(1)).seq, u32::MAX);
        assert_eq!(id.next_header(Timestamp::Utc(1)).seq, 0);
    }

    #[test]
    fn birth_message_encodes_without_allocation_and_decodes() {
        let mut id = identity();
        let body = Body::Status(StatusReport {
            state: DeviceState::Online,
            firmware: heapless::String::try_from("0.1.0").unwrap(),
            dropped: 0,
            slot: heapless::String::try_from("ota_1").unwrap(),
        });
        let reading = id.reading(Timestamp::Unsynced(12), body);
        let mut buf = [0u8; JSON_MAX];
        let n = encode(Format::Json, &reading, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap(), reading);
        assert_eq!(id.topic(Stream::Status).to_heapless().as_str(), "gs/v1/plaza-3/nb-01/status");
    }
}
