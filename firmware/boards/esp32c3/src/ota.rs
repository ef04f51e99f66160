//! Fleet updates on the ESP32-C3: the partition table's `otadata`, `ota_0`/`ota_1` and the
//! progress record (`gs_ota`) as the firmware core's [`Slots`], with the trial boot decided
//! by the app (the core's `ota::espidf`: espflash's boot loader has no rollback).
//!
//! The partition table (`partitions.csv`, in the installer image) is read at start through
//! esp-bootloader-esp-idf; the running slot is the one the MMU maps. A device flashed with a
//! table without these partitions runs, and refuses every update ("image larger than the
//! slot"): nothing to write into.

use core::cell::RefCell;
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use esp_bootloader_esp_idf::partitions::{read_partition_table, PARTITION_TABLE_MAX_LEN};
use esp_hal::peripherals::{FLASH, TIMG1};
use esp_hal::timer::timg::{MwdtStage, TimerGroup, Wdt};
use esp_storage::FlashStorage;
use gridsentry_firmware_core::ota::espidf::{EspSlots, OtaData};
use gridsentry_firmware_core::ota::{Boot, Updater};
use gridsentry_firmware_link::{settings, Chip, Flags, Ota};
use static_cell::StaticCell;

type Shared = Mutex<NoopRawMutex, RefCell<FlashStorage<'static>>>;
/// A partition of the chip's flash.
pub type Part = BlockingPartition<'static, NoopRawMutex, FlashStorage<'static>>;

static SHARED: StaticCell<Shared> = StaticCell::new();

/// The update side of the chip.
pub struct EspChip {
    record: Part,
    otadata: Part,
    other: Part,
    booted: u8,
    public_key: Option<[u8; 32]>,
}

impl EspChip {
    /// Reads the partition table, the device's settings (`link::settings::load`) and what this
    /// boot is. A trial image past its boots is sent back here: the chip restarts into the old
    /// one before anything else runs.
    pub fn start(flash: FLASH<'static>, public_key: Option<[u8; 32]>) -> (EspChip, Boot) {
        let mut storage = FlashStorage::new(flash);
        let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
        // (offset, size) of otadata, ota_0, ota_1, gs_ota, gs_set; the running slot.
        let mut parts = [(0u32, 0u32); 5];
        let mut booted = 0u8;
        if let Ok(pt) = read_partition_table(&mut storage, &mut table) {
            // Raw types: the crate's typed view panics on subtypes it does not know.
            for p in pt.iter() {
                let i = match (p.raw_type(), p.raw_subtype(), p.label_as_str()) {
                    (1, 0x00, _) => 0,
                    (0, 0x10, _) => 1,
                    (0, 0x11, _) => 2,
                    (1, _, "gs_ota") => 3,
                    (1, _, "gs_set") => 4,
                    _ => continue,
                };
                parts[i] = (p.offset(), p.len());
            }
            if let Ok(Some(running)) = pt.booted_partition() {
                booted = u8::from(running.offset() == parts[2].0 && parts[2].1 > 0);
            }
        }
        // The device's settings first: everything after depends on them.
        let mut sector = [0xffu8; 4096];
        if parts[4].1 >= 4096 && storage.read(parts[4].0, &mut sector).is_err() {
            sector.fill(0xff);
        }
        gridsentry_firmware_link::settings::load(&sector);
        let shared: &'static Shared = SHARED.init(Mutex::new(RefCell::new(storage)));
        let part = |(offset, size): (u32, u32)| BlockingPartition::new(shared, offset, size);
        let mut chip = EspChip {
            otadata: part(parts[0]),
            other: part(parts[if booted == 0 { 2 } else { 1 }]),
            record: part(parts[3]),
            booted,
            public_key,
        };
        let boot = match (OtaData { flash: &mut chip.otadata }).at_boot(booted) {
            Ok(Some(boot)) => boot,
            Ok(None) => esp_hal::system::software_reset(),
            Err(_) => Boot::Normal, // no otadata: no updates either
        };
        (chip, boot)
    }

    /// The slot's name for reports and the birth message.
    pub fn slot(&self) -> &'static str {
        if self.booted == 0 {
            "ota_0"
        } else {
            "ota_1"
        }
    }
}

impl Chip for EspChip {
    type Record = Part;
    type Slots<'a> = EspSlots<&'a mut Part>;

    fn parts(&mut self) -> (&mut Part, EspSlots<&mut Part>) {
        let slots = EspSlots {
            otadata: OtaData { flash: &mut self.otadata },
            other: &mut self.other,
            booted: self.booted,
            public_key: self.public_key,
        };
        (&mut self.record, slots)
    }

    fn restart(&mut self) -> ! {
        esp_hal::system::software_reset()
    }
}

/// What both ESP32-C3 devices do first: start TIMG1's watchdog (8 s; the caller feeds it, except
/// on an overdue trial), read the partition table and the settings, and start the update side
/// of `board`. Returns the watchdog, the update side and the running slot's name.
pub fn start_updates(
    flash: FLASH<'static>,
    timg1: TIMG1<'static>,
    board: &'static str,
    flags: &'static Flags,
) -> (Wdt<TIMG1<'static>>, Ota<EspChip>, &'static str) {
    let mut watchdog = TimerGroup::new(timg1).wdt;
    watchdog.set_timeout(MwdtStage::Stage0, esp_hal::time::Duration::from_secs(8));
    watchdog.enable();
    let (chip, boot) = EspChip::start(flash, settings::OTA_PUBLIC_KEY);
    let slot = chip.slot();
    let updater = Updater::new(board, settings::VERSION, slot);
    (watchdog, Ota::start(chip, updater, boot, flags), slot)
}
