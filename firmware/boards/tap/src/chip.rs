//! The tap board's flash for fleet updates: the ESP32-C3's layout (otadata, the other app slot,
//! the progress record) in RAM, behind the firmware core's `EspSlots` — the same update code the
//! chip runs, over NOR flash rules (erase to 0xFF, programming clears bits). Without
//! `--ota-key` every image is refused. A restart into a new image ends the process (exit 75):
//! RAM does not outlive it, so the tap board shows the download and the check, not the swap.

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use gridsentry_firmware_core::ota::espidf::{EspSlots, OtaData};
use gridsentry_firmware_link::Chip;

/// NOR flash in RAM.
pub struct Ram(Vec<u8>);

impl ErrorType for Ram {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for Ram {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let src = self
            .0
            .get(offset as usize..offset as usize + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for Ram {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.get_mut(from as usize..to as usize).ok_or(NorFlashErrorKind::OutOfBounds)?.fill(0xff);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let dst = self
            .0
            .get_mut(offset as usize..offset as usize + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        dst.iter_mut().zip(bytes).for_each(|(d, b)| *d &= b);
        Ok(())
    }
}

/// otadata, a 2 MB slot and the record, as on the ESP32-C3.
pub struct RamChip {
    otadata: Ram,
    other: Ram,
    record: Ram,
    public_key: Option<[u8; 32]>,
}

impl RamChip {
    /// Blank flash; `public_key`: the fleet's key (none: updates refused).
    pub fn new(public_key: Option<[u8; 32]>) -> Self {
        RamChip {
            otadata: Ram(vec![0xff; 0x2000]),
            other: Ram(vec![0xff; 0x1f_0000]),
            record: Ram(vec![0xff; 0x1000]),
            public_key,
        }
    }
}

impl Chip for RamChip {
    type Record = Ram;
    type Slots<'a> = EspSlots<&'a mut Ram>;

    fn parts(&mut self) -> (&mut Ram, EspSlots<&mut Ram>) {
        let slots = EspSlots {
            otadata: OtaData { flash: &mut self.otadata },
            other: &mut self.other,
            booted: 0,
            public_key: self.public_key,
        };
        (&mut self.record, slots)
    }

    fn restart(&mut self) -> ! {
        eprintln!("gridsentry-board-tap: restart into the new image");
        std::process::exit(75)
    }
}
