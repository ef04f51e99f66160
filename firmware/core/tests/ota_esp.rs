//! Fleet updates on a modelled ESP32-C3: otadata, `ota_0`/`ota_1` and the progress record in NOR
//! flash with power cuts, real Ed25519 signatures, and a boot loader modelled on ESP-IDF's
//! without rollback (what espflash ships): the valid otadata entry with the highest sequence
//! number picks the slot, an image that does not check out makes it boot the other one. The
//! model is written from ESP-IDF's rules here, not from the code under test.

mod nor;

use gridsentry_firmware_core::ota::espidf::{seq_crc, EspSlots, OtaData, TRIAL_BOOTS};
use gridsentry_firmware_core::ota::{Step, Updater, SECTOR};
use gridsentry_sensors::ota::{Chunk, Offer, UpdateState};
use nor::{Nor, Power};
use std::cell::RefCell;
use std::rc::Rc;

const SLOT: usize = 16 * SECTOR as usize;
const KEY_SEED: [u8; 32] = [7; 32];

struct Chip {
    otadata: Nor,
    slots: [Nor; 2],
    record: Nor,
    /// Images the boot loader accepts (ESP-IDF checks each image's appended SHA-256).
    known: Vec<(Vec<u8>, &'static str)>,
    power: Rc<RefCell<Power>>,
}

fn nor(len: usize, power: &Rc<RefCell<Power>>) -> Nor {
    Nor { bytes: vec![0xff; len], power: power.clone() }
}

impl Chip {
    fn new(old: &[u8]) -> Chip {
        let power = Rc::new(RefCell::new(Power::default()));
        let mut slots = [nor(SLOT, &power), nor(SLOT, &power)];
        slots[0].bytes[..old.len()].copy_from_slice(old);
        Chip {
            otadata: nor(2 * SECTOR as usize, &power),
            slots,
            record: nor(SECTOR as usize, &power),
            known: vec![(old.to_vec(), "1.0.0")],
            power,
        }
    }

    /// The version in `slot`, if the boot loader accepts what is there.
    fn image_in(&self, slot: usize) -> Option<&'static str> {
        let bytes = &self.slots[slot].bytes;
        self.known.iter().find(|(img, _)| bytes[..img.len()] == img[..]).map(|k| k.1)
    }

    /// ESP-IDF's boot loader (no rollback): the slot it starts.
    fn boot(&mut self) -> usize {
        self.power.borrow_mut().ops_left = None;
        let entry = |i: usize| {
            let b = &self.otadata.bytes[i * SECTOR as usize..][..32];
            let w = |k: usize| u32::from_le_bytes(b[k..k + 4].try_into().unwrap());
            let (seq, state, crc) = (w(0), w(24), w(28));
            let valid = seq != u32::MAX && state != 3 && state != 4 && crc == zlib_crc(seq, 0xffff_ffff);
            valid.then_some(seq)
        };
        let chosen = match (entry(0), entry(1)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let slot = chosen.map_or(0, |seq| ((seq - 1) % 2) as usize);
        if self.image_in(slot).is_some() {
            slot
        } else {
            1 - slot
        }
    }
}

/// zlib's crc32(data, start), written out here (ESP-IDF: esp_rom_crc32_le(UINT32_MAX, ..)).
fn zlib_crc(seq: u32, start: u32) -> u32 {
    let mut crc = !start;
    for b in seq.to_le_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn sign(image: &[u8], seed: &[u8; 32]) -> [u8; 64] {
    let digest = salty::Sha512::new().updated(image).finalize();
    salty::Keypair::from(seed).sign(&digest).to_bytes()
}

fn public_key() -> [u8; 32] {
    salty::Keypair::from(&KEY_SEED).public.to_bytes()
}

fn offer(image: &[u8], sig: &[u8; 64]) -> Offer {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Offer {
        v: 1,
        rollout: 3,
        board: "esp32c3".try_into().unwrap(),
        version: "2.0.0".try_into().unwrap(),
        size: image.len() as u32,
        sha256: hex(&[5; 32]).as_str().try_into().unwrap(),
        sig: hex(sig).as_str().try_into().unwrap(),
        chunk: 1024,
    }
}

#[derive(Default, Debug)]
struct Seen {
    states: Vec<UpdateState>,
    errors: Vec<String>,
    chunks: u32,
    starts: u32,
}

/// Starts the chip until the device reports an end state (or 12 starts). `cut`: flash
/// operations until the power goes on the first start.
fn run(chip: &mut Chip, image: &[u8], sig: &[u8; 64], cut: Option<u32>, proves: bool) -> Seen {
    let mut seen = Seen::default();
    let o = offer(image, sig);
    let mut cut = cut;
    'start: for _ in 0..12 {
        seen.starts += 1;
        let booted = chip.boot();
        chip.power.borrow_mut().ops_left = cut.take();
        let version = chip.image_in(booted).expect("the boot loader started a valid image");
        let Chip { otadata, slots, record, power, .. } = chip;
        let [a, b] = slots;
        let other = if booted == 0 { b } else { a };
        let mut od = OtaData { flash: &mut *otadata };
        let boot = match od.at_boot(booted as u8) {
            Ok(Some(boot)) => boot,
            _ => continue 'start, // reverted (restart at once) or cut
        };
        let mut slots = EspSlots { otadata: od, other, booted: booted as u8, public_key: Some(public_key()) };
        let mut u = Updater::new("esp32c3", version, if booted == 0 { "ota_0" } else { "ota_1" });
        let mut step = Some(u.start(boot, &mut *record, &mut slots));
        let mut now = 0;
        while let Some(s) = step.take() {
            if power.borrow().dead() {
                continue 'start;
            }
            now += 1;
            let r = match s {
                Step::Report(r) => r,
                Step::Verify(r) => {
                    seen.states.push(r.state);
                    step = Some(u.verify(&mut *record, &mut slots));
                    continue;
                }
                Step::Restart(r) => {
                    seen.states.push(r.state);
                    continue 'start;
                }
            };
            seen.states.push(r.state);
            seen.errors.extend(r.error.as_ref().map(|e| e.to_string()));
            step = match r.state {
                UpdateState::Trial if proves => u.proved(&mut *record, &mut slots),
                UpdateState::Trial => continue 'start, // the watchdog, say
                UpdateState::Idle if r.version.as_str() == "1.0.0" => {
                    u.offer(&o, now, &mut *record, &mut slots)
                }
                UpdateState::Downloading => {
                    let at = r.offset.unwrap() as usize;
                    let end = (at + 1024).min(image.len());
                    seen.chunks += 1;
                    let c = Chunk { rollout: 3, offset: at as u32, data: &image[at..end] };
                    u.chunk(&c, now, &mut *record, &mut slots)
                }
                _ => None,
            };
            if step.is_none() && !power.borrow().dead() {
                return seen;
            }
        }
    }
    seen
}

fn image(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed)).collect()
}

fn setup() -> (Chip, Vec<u8>) {
    let (old, new) = (image(30_000, 1), image(40_001, 2));
    let mut chip = Chip::new(&old);
    chip.known.push((new.clone(), "2.0.0"));
    (chip, new)
}

#[test]
fn entries_are_written_as_esp_idf_writes_them() {
    // The vector of esp-bootloader-esp-idf's own tests: sequence 2 (ota_1), state New.
    let want: [u8; 32] = [
        2, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 0, 0, 0, 0, 116, 55, 246, 85,
    ];
    let power = Rc::new(RefCell::new(Power::default()));
    let mut od = OtaData { flash: nor(2 * SECTOR as usize, &power) };
    assert_eq!(od.next_boot().unwrap(), 0, "blank otadata boots ota_0");
    od.mark_trial(1).unwrap();
    assert_eq!(od.flash.bytes[..32], want);
    assert_eq!(seq_crc(1).to_le_bytes(), [154, 152, 67, 71]);
    assert_eq!(seq_crc(3).to_le_bytes(), [17, 80, 74, 237]);
    assert_eq!(od.next_boot().unwrap(), 1);
}

#[test]
fn an_update_confirms_and_the_new_slot_stays() {
    let (mut chip, new) = setup();
    let s = run(&mut chip, &new, &sign(&new, &KEY_SEED), None, true);
    assert_eq!(s.states.last(), Some(&UpdateState::Confirmed), "{s:?}");
    assert_eq!(s.chunks, 40, "40,001 bytes in 1 KB chunks: 40 asked, the last one short");
    for want in [UpdateState::Downloading, UpdateState::Verifying, UpdateState::Rebooting, UpdateState::Trial]
    {
        assert!(s.states.contains(&want), "{want:?} in {s:?}");
    }
    for _ in 0..3 {
        assert_eq!(chip.boot(), 1);
        let mut od = OtaData { flash: &mut chip.otadata };
        assert_eq!(od.at_boot(1).unwrap(), Some(gridsentry_firmware_core::ota::Boot::Normal));
    }
}

#[test]
fn an_image_that_never_proves_itself_goes_back_after_the_trial_boots() {
    let (mut chip, new) = setup();
    let s = run(&mut chip, &new, &sign(&new, &KEY_SEED), None, false);
    assert_eq!(s.states.last(), Some(&UpdateState::RolledBack), "{s:?}");
    let trials = s.states.iter().filter(|x| **x == UpdateState::Trial).count() as u32;
    assert_eq!(trials, TRIAL_BOOTS);
    assert_eq!(chip.boot(), 0, "on the old image");
    // The old image does not take the same download up again by itself.
    let mut od = OtaData { flash: &mut chip.otadata };
    assert_eq!(od.at_boot(0).unwrap(), Some(gridsentry_firmware_core::ota::Boot::Normal));
    assert!(gridsentry_firmware_core::ota::record::read(&mut chip.record).is_none());
}

#[test]
fn an_image_signed_with_another_key_is_refused_and_otadata_untouched() {
    let (mut chip, new) = setup();
    let s = run(&mut chip, &new, &sign(&new, &[8; 32]), None, true);
    assert_eq!(s.states.last(), Some(&UpdateState::Failed));
    assert_eq!(s.errors, ["signature does not match"]);
    assert!(chip.otadata.bytes.iter().all(|b| *b == 0xff), "never pointed at the new slot");
    assert_eq!(chip.boot(), 0);
}

#[test]
fn an_image_the_boot_loader_refuses_counts_as_rolled_back() {
    let (mut chip, new) = setup();
    chip.known.pop(); // signed, but its appended hash does not check out (say)
    let s = run(&mut chip, &new, &sign(&new, &KEY_SEED), None, true);
    assert_eq!(s.states.last(), Some(&UpdateState::RolledBack), "{s:?}");
    assert_eq!(chip.boot(), 0);
}

/// Every cut point of an update, proved or not: always a valid image at the next start, and
/// the end is the new image kept or the old one back — never anything else.
#[test]
fn every_cut_point_ends_on_one_whole_image() {
    for proves in [true, false] {
        let (mut clean, new) = setup();
        let sig = sign(&new, &KEY_SEED);
        run(&mut clean, &new, &sig, None, proves);
        let total = clean.power.borrow().ops;
        assert!(total > 50, "{total} flash operations");
        let mut ends = [0u32; 2];
        for cut in 1..=total {
            let (mut chip, new) = setup();
            let s = run(&mut chip, &new, &sig, Some(cut), proves);
            let end = s.states.last().copied();
            let slot = chip.boot();
            match end {
                Some(UpdateState::Confirmed) if proves => {
                    assert_eq!(chip.image_in(slot), Some("2.0.0"), "cut {cut}");
                    ends[0] += 1;
                }
                Some(UpdateState::RolledBack) => {
                    assert_eq!(chip.image_in(slot), Some("1.0.0"), "cut {cut}");
                    ends[1] += 1;
                }
                other => panic!("cut {cut} (proves {proves}): ended {other:?} after {s:?}"),
            }
            assert!(s.chunks <= 44, "cut {cut}: {} chunks", s.chunks);
        }
        if proves {
            assert!(ends[0] >= total - 2, "{ends:?} of {total}: only a cut while keeping may revert");
        } else {
            assert_eq!(ends[1], total);
        }
    }
}
