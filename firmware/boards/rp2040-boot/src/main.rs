//! The RP2040 noise box's boot loader (embassy-boot-rp). At every start it looks at the boot
//! state: an image the app marked (signature already checked by the app, firmware/core ota) is
//! swapped into ACTIVE and run on trial; a trial image that restarted without marking itself
//! booted is swapped back out (revert). The swap is restartable: a power cut in the middle is
//! finished at the next start. Then it runs ACTIVE.
//!
//! The watchdog runs from here on (8 s): a hung swap, or an app that never feeds it, restarts the
//! chip. The app feeds it from its audio loop.
#![no_std]
#![no_main]

use core::cell::RefCell;
use cortex_m_rt::{entry, exception};
use embassy_boot_rp::{BootLoader, BootLoaderConfig, WatchdogFlash};
use embassy_sync::blocking_mutex::Mutex;
use embassy_time::Duration;

/// Flash size of the Pico W.
const FLASH_SIZE: usize = 2 * 1024 * 1024;

#[entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    let flash = WatchdogFlash::<FLASH_SIZE>::start(p.FLASH, p.WATCHDOG, Duration::from_secs(8));
    let flash = Mutex::new(RefCell::new(flash));
    let config = BootLoaderConfig::from_linkerfile_blocking(&flash, &flash, &flash);
    let active_offset = config.active.offset();
    let bl: BootLoader = BootLoader::prepare(config);
    // SAFETY: ACTIVE holds an app linked for it (its vector table first); nothing of the boot
    // loader is used after the jump.
    unsafe { bl.load(embassy_rp::flash::FLASH_BASE as u32 + active_offset) }
}

#[exception]
unsafe fn HardFault(_: &cortex_m_rt::ExceptionFrame) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // A flash error while swapping: start again (the swap resumes from its progress).
    cortex_m::peripheral::SCB::sys_reset()
}
