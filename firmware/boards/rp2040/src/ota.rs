//! Fleet updates on the RP2040: embassy-boot-rp's updater as the firmware core's [`Slots`], the
//! progress record's flash partition, and what the boot loader did at this start.
//!
//! The signature is checked by embassy-boot's `verify_and_mark_updated` (salty: Ed25519 over
//! SHA-512 of the DFU partition's first `size` bytes, as `gridsentry firmware sign` makes it)
//! against the public key built in (`GRIDSENTRY_OTA_PUBLIC_KEY`); only then is the swap marked.
//! A build without a key refuses every image.

use core::cell::RefCell;
use embassy_boot_rp::{AlignedBuffer, BlockingFirmwareUpdater, FirmwareUpdaterConfig, State};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_rp::flash::{Blocking, Flash, ERASE_SIZE, WRITE_SIZE};
use embassy_rp::peripherals::FLASH;
use embassy_rp::Peri;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use gridsentry_firmware_core::ota::{Boot, Slots, VerifyError};
use gridsentry_firmware_link::settings::{self, Settings};
use gridsentry_firmware_link::Chip;
use static_cell::StaticCell;

/// The Pico W's flash.
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;

type ChipFlash = Flash<'static, FLASH, Blocking, FLASH_SIZE>;
/// A partition of the chip's flash.
pub type Part = BlockingPartition<'static, NoopRawMutex, ChipFlash>;

static SHARED: StaticCell<Mutex<NoopRawMutex, RefCell<ChipFlash>>> = StaticCell::new();
/// The boot state is written WRITE_SIZE bytes at a time (embassy-boot asserts the length).
static ALIGNED: StaticCell<AlignedBuffer<WRITE_SIZE>> = StaticCell::new();

/// The update side of the chip.
pub struct Updates {
    updater: BlockingFirmwareUpdater<'static, Part, Part>,
    /// The progress record's sector (`OTA_RECORD` in partitions.x).
    pub record: Part,
    public_key: Option<[u8; 32]>,
    dfu_size: u32,
    shared: &'static Mutex<NoopRawMutex, RefCell<ChipFlash>>,
}

impl Updates {
    /// Takes the flash; `public_key`: the fleet's signing key (none: updates are refused).
    pub fn new(flash: Peri<'static, FLASH>, public_key: Option<[u8; 32]>) -> Self {
        let shared = SHARED.init(Mutex::new(RefCell::new(Flash::new_blocking(flash))));
        let config = FirmwareUpdaterConfig::from_linkerfile_blocking(shared, shared);
        let dfu_size = config.dfu.size();
        // SAFETY: the symbols are addresses the linker script defines (partitions.x); only
        // their addresses are taken.
        let record = unsafe {
            unsafe extern "C" {
                static __ota_record_start: u32;
                static __ota_record_end: u32;
            }
            let start = &__ota_record_start as *const u32 as u32;
            let end = &__ota_record_end as *const u32 as u32;
            BlockingPartition::new(shared, start, end - start)
        };
        let aligned = ALIGNED.init(AlignedBuffer([0; WRITE_SIZE]));
        Updates {
            updater: BlockingFirmwareUpdater::new(config, &mut aligned.0),
            record,
            public_key,
            dfu_size,
            shared,
        }
    }

    /// Reads the device's settings from its sector (`link::settings::load`; the sector is read
    /// into a stack buffer here, not into the async main task's state, where it would stay).
    pub fn load_settings(&mut self) -> (&'static Settings, bool) {
        let mut sector = [0xffu8; 4096];
        self.read_settings(&mut sector);
        settings::load(&sector)
    }

    fn read_settings(&mut self, out: &mut [u8; 4096]) {
        // SAFETY: as in `new`, only the symbols' addresses are taken.
        let start = unsafe {
            unsafe extern "C" {
                static __settings_start: u32;
            }
            &__settings_start as *const u32 as u32
        };
        if self.shared.lock(|f| f.borrow_mut().blocking_read(start, out)).is_err() {
            out.fill(0xff); // unreadable: the build's settings
        }
    }

    /// What the boot loader did at this start.
    pub fn boot(&mut self) -> Boot {
        match self.updater.get_state() {
            Ok(State::Swap) => Boot::Trial,
            Ok(State::Revert) => Boot::Reverted,
            _ => Boot::Normal,
        }
    }

    /// The record partition and the slots, for the core's updater (both borrow the chip).
    pub fn parts(&mut self) -> (&mut Part, SlotsOf<'_>) {
        let Updates { updater, record, public_key, dfu_size, .. } = self;
        (record, SlotsOf { updater, public_key: *public_key, dfu_size: *dfu_size })
    }
}

impl Chip for Updates {
    type Record = Part;
    type Slots<'a> = SlotsOf<'a>;

    fn parts(&mut self) -> (&mut Part, SlotsOf<'_>) {
        Updates::parts(self)
    }

    fn restart(&mut self) -> ! {
        cortex_m::peripheral::SCB::sys_reset()
    }
}

/// [`Slots`] over the boot loader's updater.
pub struct SlotsOf<'a> {
    updater: &'a mut BlockingFirmwareUpdater<'static, Part, Part>,
    public_key: Option<[u8; 32]>,
    dfu_size: u32,
}

impl Slots for SlotsOf<'_> {
    fn capacity(&self) -> u32 {
        // The DFU partition is one erase sector larger than ACTIVE (the swap's scratch).
        self.dfu_size - ERASE_SIZE as u32
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), VerifyError> {
        self.updater.write_firmware(offset as usize, data).map_err(|_| VerifyError::Flash)
    }

    fn verify_and_mark(&mut self, size: u32, sig: &[u8; 64]) -> Result<(), VerifyError> {
        let Some(key) = &self.public_key else { return Err(VerifyError::Signature) };
        match self.updater.verify_and_mark_updated(key, sig, size) {
            Ok(()) => Ok(()),
            Err(embassy_boot::FirmwareUpdaterError::Signature(_)) => Err(VerifyError::Signature),
            Err(_) => Err(VerifyError::Flash),
        }
    }

    fn mark_booted(&mut self) -> Result<(), VerifyError> {
        self.updater.mark_booted().map_err(|_| VerifyError::Flash)
    }
}
