//! NOR flash as the tests model it (erase to 0xFF, program clears bits) with power cuts after
//! any operation — including halfway through one (a sector partly erased, a write partly
//! programmed). Shared by the update tests of both chips.
#![allow(dead_code)]

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use gridsentry_firmware_core::ota::SECTOR;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Debug)]
pub struct Cut;
impl NorFlashError for Cut {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// Flash operations until the power goes (None: it stays on), shared by both flashes.
#[derive(Default)]
pub struct Power {
    pub ops_left: Option<u32>,
    pub ops: u32,
}

impl Power {
    /// Whether this operation completes; `false`: the power went during it.
    pub fn op(&mut self) -> Result<(), ()> {
        self.ops += 1;
        match &mut self.ops_left {
            Some(0) => Err(()),
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    return Err(());
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
    pub fn dead(&self) -> bool {
        self.ops_left == Some(0)
    }
}

/// NOR flash: erase sets 0xFF, program clears bits; a cut leaves half an operation done.
pub struct Nor {
    pub bytes: Vec<u8>,
    pub power: Rc<RefCell<Power>>,
}

impl ErrorType for Nor {
    type Error = Cut;
}
impl ReadNorFlash for Nor {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), Cut> {
        if self.power.borrow().dead() {
            return Err(Cut);
        }
        out.copy_from_slice(&self.bytes[offset as usize..offset as usize + out.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}
impl NorFlash for Nor {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR as usize;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Cut> {
        let (from, to) = (from as usize, to as usize);
        if self.power.borrow().dead() {
            return Err(Cut);
        }
        if self.power.borrow_mut().op().is_err() {
            // Half erased: the first half 0xFF, the rest as it was with some bits set.
            let mid = (from + to) / 2;
            self.bytes[from..mid].fill(0xff);
            self.bytes[mid..to].iter_mut().for_each(|b| *b |= 0x5a);
            return Err(Cut);
        }
        self.bytes[from..to].fill(0xff);
        Ok(())
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Cut> {
        let at = offset as usize;
        if self.power.borrow().dead() {
            return Err(Cut);
        }
        let cut = self.power.borrow_mut().op().is_err();
        let n = if cut { data.len() / 2 } else { data.len() };
        for (b, d) in self.bytes[at..at + n].iter_mut().zip(data) {
            *b &= d;
        }
        if cut {
            return Err(Cut);
        }
        Ok(())
    }
}
