//! The device's update logic on a modelled chip: NOR flash (erase to 0xFF, program clears bits)
//! for the progress record and the second slot, an A/B bootloader with trial boot and revert,
//! and power cuts after any flash operation — including halfway through one (a sector partly
//! erased, a write partly programmed). Whatever the cut, the device must end on a complete,
//! signed image (the new one or the old), and resume a download from the sector it was in.

mod nor;

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use gridsentry_firmware_core::ota::{Boot, Slots, Step, Updater, VerifyError, SECTOR};
use gridsentry_sensors::ota::{Chunk, Offer, Report, UpdateState};
use nor::{Nor, Power};
use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// The chip: record sector, active and DFU slots, boot state as an A/B bootloader keeps it.
struct Chip {
    record: Nor,
    dfu: Nor,
    active: Vec<u8>,
    previous: Vec<u8>,
    /// Marked for a trial boot (swap at the next start).
    marked: bool,
    /// Running on trial (not yet kept).
    trial: bool,
    /// Sectors of the DFU slot erased since this start (a new updater erases on first write).
    erased: Vec<bool>,
    good: Vec<u8>,
    good_sig: [u8; 64],
    power: Rc<RefCell<Power>>,
}

struct ChipSlots<'a> {
    dfu: &'a mut Nor,
    erased: &'a mut Vec<bool>,
    marked: &'a mut bool,
    trial: &'a mut bool,
    good: &'a [u8],
    good_sig: &'a [u8; 64],
}

impl Slots for ChipSlots<'_> {
    fn capacity(&self) -> u32 {
        self.dfu.bytes.len() as u32
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), VerifyError> {
        let k = (offset / SECTOR) as usize;
        if !self.erased[k] {
            self.dfu.erase(k as u32 * SECTOR, (k as u32 + 1) * SECTOR).map_err(|_| VerifyError::Flash)?;
            self.erased[k] = true;
        }
        self.dfu.write(offset, data).map_err(|_| VerifyError::Flash)
    }
    fn verify_and_mark(&mut self, size: u32, sig: &[u8; 64]) -> Result<(), VerifyError> {
        // Stands in for Ed25519 over SHA-512: the slot must hold exactly the signed image.
        let mut image = vec![0; size as usize];
        self.dfu.read(0, &mut image).map_err(|_| VerifyError::Flash)?;
        if image != self.good || sig != self.good_sig {
            return Err(VerifyError::Signature);
        }
        if self.dfu.power.borrow_mut().op().is_err() {
            return Err(VerifyError::Flash);
        }
        *self.marked = true;
        Ok(())
    }
    fn mark_booted(&mut self) -> Result<(), VerifyError> {
        if self.dfu.power.borrow_mut().op().is_err() {
            return Err(VerifyError::Flash);
        }
        *self.trial = false;
        Ok(())
    }
}

impl Chip {
    fn new(old: &[u8], good: &[u8], good_sig: [u8; 64]) -> Chip {
        let power = Rc::new(RefCell::new(Power::default()));
        Chip {
            record: Nor { bytes: vec![0xff; SECTOR as usize], power: power.clone() },
            dfu: Nor { bytes: vec![0xff; 16 * SECTOR as usize], power: power.clone() },
            active: old.to_vec(),
            previous: Vec::new(),
            marked: false,
            trial: false,
            erased: vec![false; 16],
            good: good.to_vec(),
            good_sig,
            power,
        }
    }

    /// The bootloader at a start: swap a marked image in (trial), revert an unproved trial.
    fn boot(&mut self) -> Boot {
        self.power.borrow_mut().ops_left = None;
        self.erased.fill(false);
        if self.marked {
            self.marked = false;
            self.previous = std::mem::replace(&mut self.active, self.good.clone());
            self.trial = true;
            Boot::Trial
        } else if self.trial {
            self.trial = false;
            self.active = std::mem::take(&mut self.previous);
            Boot::Reverted
        } else {
            Boot::Normal
        }
    }

    fn slots(&mut self) -> (&mut Nor, ChipSlots<'_>) {
        let s = ChipSlots {
            dfu: &mut self.dfu,
            erased: &mut self.erased,
            marked: &mut self.marked,
            trial: &mut self.trial,
            good: &self.good,
            good_sig: &self.good_sig,
        };
        (&mut self.record, s)
    }
}

fn offer(image: &[u8], sig: &[u8; 64], chunk: u32) -> Offer {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let sha: [u8; 32] = core::array::from_fn(|i| image[i % image.len()] ^ i as u8); // any 32 bytes
    Offer {
        v: 1,
        rollout: 7,
        board: "rp2040".try_into().unwrap(),
        version: "2.0.0".try_into().unwrap(),
        size: image.len() as u32,
        sha256: hex(&sha).as_str().try_into().unwrap(),
        sig: hex(sig).as_str().try_into().unwrap(),
        chunk,
    }
}

/// What the daemon side saw, and whether the device asked for a chunk it already had.
#[derive(Default, Debug)]
struct Server {
    reports: Vec<Report>,
    chunks_sent: u32,
}

/// Runs the device (one start per loop) against a server that answers every download report
/// with the chunk it asks for, until it reports an end state. `cut_at`: flash operations until
/// the power goes on the first start. The new image proves itself unless `never_proves`.
fn run(
    chip: &mut Chip,
    image: &[u8],
    sig: &[u8; 64],
    chunk: u32,
    cut_at: Option<u32>,
    never_proves: bool,
) -> Server {
    let mut server = Server::default();
    let o = offer(image, sig, chunk);
    let version_of = |chip: &Chip| if chip.active == image { "2.0.0" } else { "1.0.0" };
    let mut cut = cut_at;
    for _start in 0..10 {
        let boot = chip.boot();
        chip.power.borrow_mut().ops_left = cut.take();
        let mut u = Updater::new("rp2040", version_of(chip), "a");
        let (rec, mut slots) = chip.slots();
        let mut step = Some(u.start(boot, rec, &mut slots));
        let mut now = 0;
        let mut restart = false;
        while let Some(s) = step.take() {
            if chip.power.borrow().dead() {
                break;
            }
            now += 1;
            let (rec, mut slots) = chip.slots();
            let report = match s {
                Step::Report(r) => r,
                Step::Verify(r) => {
                    step = Some(u.verify(rec, &mut slots));
                    server.reports.push(r);
                    continue;
                }
                Step::Restart(r) => {
                    server.reports.push(r);
                    restart = true;
                    break;
                }
            };
            server.reports.push(report.clone());
            step = match report.state {
                UpdateState::Trial => {
                    if never_proves {
                        restart = true;
                        None
                    } else {
                        u.proved(rec, &mut slots)
                    }
                }
                UpdateState::Idle if report.version.as_str() == "1.0.0" => u.offer(&o, now, rec, &mut slots),
                UpdateState::Downloading => {
                    let at = report.offset.unwrap() as usize;
                    let end = (at + chunk as usize).min(image.len());
                    server.chunks_sent += 1;
                    u.chunk(
                        &Chunk { rollout: 7, offset: at as u32, data: &image[at..end] },
                        now,
                        rec,
                        &mut slots,
                    )
                }
                _ => None,
            };
            if step.is_none() && !restart && !chip.power.borrow().dead() {
                return server; // an end state: confirmed, failed, rolled back
            }
        }
        let _ = restart; // a restart or a power cut: the loop starts the chip again
    }
    server
}

fn image(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn an_update_without_faults_downloads_each_chunk_once_and_confirms() {
    let (old, new) = (image(30_000, 1), image(40_000, 2));
    let mut chip = Chip::new(&old, &new, [9; 64]);
    let s = run(&mut chip, &new, &[9; 64], 1024, None, false);
    assert_eq!(chip.active, new);
    assert_eq!(s.chunks_sent, 40, "40,000 bytes in 1 KB chunks");
    let states: Vec<_> = s.reports.iter().map(|r| r.state).collect();
    assert_eq!(states.first(), Some(&UpdateState::Idle));
    assert_eq!(states.last(), Some(&UpdateState::Confirmed));
    for want in [UpdateState::Downloading, UpdateState::Verifying, UpdateState::Rebooting] {
        assert!(states.contains(&want), "{want:?} in {states:?}");
    }
    assert_eq!(s.reports.last().unwrap().rollout, Some(7));
    assert!(!chip.trial, "kept");
}

#[test]
fn a_bad_signature_is_refused_and_the_running_image_untouched() {
    let (old, new) = (image(30_000, 1), image(40_000, 2));
    let mut chip = Chip::new(&old, &new, [9; 64]);
    let s = run(&mut chip, &new, &[8; 64], 1024, None, false);
    assert_eq!(chip.active, old);
    assert!(!chip.marked);
    let last = s.reports.last().unwrap();
    assert_eq!((last.state, last.error.as_deref()), (UpdateState::Failed, Some("signature does not match")));
}

#[test]
fn an_image_that_never_proves_itself_is_rolled_back() {
    let (old, new) = (image(30_000, 1), image(40_000, 2));
    let mut chip = Chip::new(&old, &new, [9; 64]);
    let s = run(&mut chip, &new, &[9; 64], 1024, None, true);
    assert_eq!(chip.active, old);
    let last = s.reports.last().unwrap();
    assert_eq!(
        (last.state, last.rollout, last.version.as_str()),
        (UpdateState::RolledBack, Some(7), "1.0.0")
    );
}

#[test]
fn offers_for_another_board_or_the_running_version_change_nothing() {
    let (old, new) = (image(30_000, 1), image(40_000, 2));
    let mut chip = Chip::new(&old, &new, [9; 64]);
    chip.boot();
    let mut u = Updater::new("rp2040", "1.0.0", "a");
    let (rec, mut slots) = chip.slots();
    let mut o = offer(&new, &[9; 64], 1024);
    o.board = "esp32c3".try_into().unwrap();
    assert_eq!(u.offer(&o, 0, rec, &mut slots), None);
    let mut o = offer(&new, &[9; 64], 1024);
    o.version = "1.0.0".try_into().unwrap();
    let Some(Step::Report(r)) = u.offer(&o, 0, rec, &mut slots) else { panic!() };
    assert_eq!(r.state, UpdateState::Confirmed, "already running it");
    let mut o = offer(&new, &[9; 64], 1000);
    o.version = "3.0.0".try_into().unwrap();
    let Some(Step::Report(r)) = u.offer(&o, 0, rec, &mut slots) else { panic!() };
    assert_eq!(
        (r.state, r.error.as_deref()),
        (UpdateState::Failed, Some("offer malformed")),
        "chunk must divide a sector"
    );
    assert_eq!(chip.record.bytes, vec![0xff; SECTOR as usize], "nothing written");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// A power cut after any number of flash operations (mid-operation included): the chip ends
    /// on a whole image — the new one confirmed, or the old one after a revert — having
    /// re-downloaded at most one sector.
    #[test]
    fn a_power_cut_anywhere_ends_on_a_whole_image_and_resumes(cut in 1u32..120, chunk_log in 9u32..=12) {
        let chunk = 1 << chunk_log;
        let (old, new) = (image(30_000, 1), image(40_000, 2));
        let mut chip = Chip::new(&old, &new, [9; 64]);
        let s = run(&mut chip, &new, &[9; 64], chunk, Some(cut), false);
        // A cut while the trial image writes "keep me" sends the bootloader back: reverting is
        // an allowed end, a half image never is.
        let end = s.reports.last().map(|r| r.state);
        prop_assert!(
            (chip.active == new && end == Some(UpdateState::Confirmed))
                || (chip.active == old && end == Some(UpdateState::RolledBack)),
            "ended {:?} on the {} image", end, if chip.active == new { "new" } else if chip.active == old { "old" } else { "a broken" }
        );
        let needed = 40_000u32.div_ceil(chunk);
        prop_assert!(s.chunks_sent <= needed + SECTOR / chunk, "{} chunks for {}", s.chunks_sent, needed);
    }

    /// The same with an image that never proves itself: back on the old one, every time.
    #[test]
    fn a_power_cut_before_a_failed_trial_still_ends_on_the_old_image(cut in 1u32..120) {
        let (old, new) = (image(30_000, 1), image(40_000, 2));
        let mut chip = Chip::new(&old, &new, [9; 64]);
        let s = run(&mut chip, &new, &[9; 64], 1024, Some(cut), true);
        prop_assert_eq!(&chip.active, &old);
        prop_assert_eq!(s.reports.last().map(|r| r.state), Some(UpdateState::RolledBack));
    }
}

/// Every cut point of a 1 KB-chunk update, one by one: each ends on a whole image, and the
/// cuts during the download (most of them) really did resume rather than start again.
#[test]
fn every_cut_point_of_one_update() {
    let (old, new) = (image(30_000, 1), image(40_000, 2));
    let mut clean = Chip::new(&old, &new, [9; 64]);
    run(&mut clean, &new, &[9; 64], 1024, None, false);
    let total = clean.power.borrow().ops;
    assert!(total > 60, "{total} flash operations in one update");
    let (mut resumed, mut reverted) = (0, 0);
    for cut in 1..=total {
        let mut chip = Chip::new(&old, &new, [9; 64]);
        let s = run(&mut chip, &new, &[9; 64], 1024, Some(cut), false);
        let end = s.reports.last().map(|r| r.state);
        match end {
            Some(UpdateState::Confirmed) => assert_eq!(chip.active, new, "cut {cut}"),
            Some(UpdateState::RolledBack) => {
                assert_eq!(chip.active, old, "cut {cut}");
                reverted += 1;
            }
            other => panic!("cut {cut}: ended {other:?}"),
        }
        assert!(s.chunks_sent <= 44, "cut {cut}: {} chunks", s.chunks_sent);
        resumed += usize::from(s.chunks_sent > 40);
    }
    assert!(resumed >= 40, "{resumed} of {total} cuts re-fetched part of a sector");
    assert!(reverted <= 2, "{reverted} cuts reverted (only a cut while keeping the trial image may)");
}
