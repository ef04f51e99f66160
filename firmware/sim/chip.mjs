// What rp2040js 1.4.1 needs besides the firmware to run the noise box as the RP2040 would, each
// piece modelled as stated here (and only as far as the box's code uses it):
//
// - UART: rp2040js raises the TX interrupt again on every register access ("TODO" in its
//   source), so a driver that clears it and keeps TXIM enabled (embassy's buffered UART) sees an
//   endless interrupt storm. Here, as on the PL011, the TX interrupt is raised when a byte leaves
//   (the TX FIFO drains at once: TX timing is not modelled) and stays cleared once cleared; and
//   UARTDMACR, which rp2040js does not model, reads back what was written.
// - Boot ROM flash routines: the RP2040's mask ROM is not on npm. `romImage()` is a 16 KB stand-in
//   whose only contents are the ROM's lookup table pointers (0x14, 0x18) and, for each routine
//   the firmware looks up, `bkpt #n; bx lr`. The breakpoint hands the call to `romCall()`, which
//   does what the routine does to the flash array: flash_range_erase (4 KB sectors to 0xFF),
//   flash_range_program (256-byte pages; NOR: bits only cleared), memcpy/memcpy44/memset(4), and
//   nothing for connect_internal_flash, flash_exit_xip, flash_flush_cache, flash_enter_cmd_xip
//   (rp2040js reads flash directly; there is no XIP cache to flush). An erase advances the
//   emulated clock 45 ms per sector and a program 0.7 ms per page (the W25Q16JV's typical times),
//   during which the CPU does not run — so a power cut can land inside one (see `cutDuring`).
// - XIP_CTRL (0x14000000) is not modelled by rp2040js (reads gave all ones, so embassy's flash
//   driver waited for ever for the streaming counter to reach 0): its registers read 0 — no
//   background streaming, cache idle.
// - Resets: a write of SYSRESETREQ to AIRCR and the watchdog's trigger restart the chip (flash
//   kept, everything else new), as `onReset` decides. (rp2040js's watchdog, left alone, re-fires
//   its alarm for ever once its counter reaches 0.)

const FLASH = 0x10000000;
const SECTOR = 4096;
const PAGE = 256;

/** The PL011 TX interrupt as an edge: raised when a byte is sent, not on every access. */
export function fixUart(uart) {
  const TX = 1 << 5;
  uart.checkInterrupts = function () {
    this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
  };
  // UARTDMACR (0x48) is not modelled: reads answered all ones ("RX DMA enabled"), so embassy's
  // handler returned at once and the interrupt was never cleared. It reads back what was written.
  const DMACR = 0x48;
  let dmacr = 0;
  const read = uart.readUint32.bind(uart);
  uart.readUint32 = (offset) => (offset === DMACR ? dmacr : read(offset));
  const write = uart.writeUint32.bind(uart);
  uart.writeUint32 = (offset, value) => {
    if (offset === DMACR) return void (dmacr = value & 7);
    write(offset, value);
    if (offset === 0) {
      uart.interruptStatus |= TX;
      uart.checkInterrupts();
    }
  };
}

// Routine codes (two ASCII characters, as the ROM table has them) and their breakpoint numbers.
const ROUTINES = {
  IF: 1, // connect_internal_flash
  EX: 2, // flash_exit_xip
  RE: 3, // flash_range_erase(addr, count, block_size, block_cmd)
  RP: 4, // flash_range_program(addr, data, count)
  FC: 5, // flash_flush_cache
  CX: 6, // flash_enter_cmd_xip
  MC: 7, // memcpy(dest, src, n)
  C4: 8, // memcpy44
  MS: 9, // memset(ptr, c, n)
  S4: 10, // memset4
};
const LOOKUP = 0x20; // breakpoint number of rom_table_lookup
const STUBS = 0x100; // where the stubs start in the ROM

/** The stand-in ROM as 32-bit words (rp2040js's `loadBootrom` format). */
export function romImage() {
  const rom = new Uint8Array(16 * 1024);
  const dv = new DataView(rom.buffer);
  dv.setUint32(0x10, 0x01754d, true); // 'M', 'u', 1: the ROM's magic and version
  dv.setUint16(0x14, 0x80, true); // function table (its contents are not read: lookups trap)
  dv.setUint16(0x16, 0x90, true); // data table
  dv.setUint16(0x18, STUBS + 1, true); // rom_table_lookup: the first stub (Thumb)
  const stub = (i, n) => {
    dv.setUint16(STUBS + 4 * i, 0xbe00 | n, true); // bkpt #n
    dv.setUint16(STUBS + 4 * i + 2, 0x4770, true); // bx lr
  };
  stub(0, LOOKUP);
  for (const n of Object.values(ROUTINES)) stub(n, n);
  return new Uint32Array(rom.buffer);
}

/**
 * Handles a breakpoint in the stand-in ROM. `flash` is the chip's flash array; `advance(ns)`
 * moves the emulated clock (the CPU waits); `cut(fromCycle, toCycle)` tells whether the power
 * fails inside that window, and where (0..1), or null.
 */
export function romCall(mcu, code, flash, hooks) {
  const r = mcu.core.registers;
  const mem = (addr, n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = mcu.readUint8(addr + i);
    return out;
  };
  switch (code) {
    case LOOKUP: {
      const want = String.fromCharCode(r[1] & 0xff, (r[1] >> 8) & 0xff);
      const n = ROUTINES[want];
      if (n === undefined) throw new Error(`the firmware looked up ROM routine '${want}', which the stand-in ROM does not model`);
      r[0] = STUBS + 4 * n + 1;
      return;
    }
    case ROUTINES.RE: {
      const [addr, count] = [r[0], r[1]];
      if (addr % SECTOR || count % SECTOR || addr + count > flash.length) throw new Error(`flash_range_erase(0x${addr.toString(16)}, ${count}): unaligned or outside flash`);
      for (let at = addr; at < addr + count; at += SECTOR) {
        const part = hooks.during(45e6); // 45 ms per sector
        if (part !== null) {
          // Cut mid-erase: the first part erased, the rest as it was with bits set at random.
          const done = Math.floor(part * SECTOR);
          flash.fill(0xff, at, at + done);
          for (let i = at + done; i < at + SECTOR; i++) flash[i] |= Math.random() < 0.5 ? 0xff : 0;
          hooks.powerOff();
          return;
        }
        flash.fill(0xff, at, at + SECTOR);
      }
      return;
    }
    case ROUTINES.RP: {
      const [addr, data, count] = [r[0], r[1], r[2]];
      if (addr % PAGE || count % PAGE || addr + count > flash.length) throw new Error(`flash_range_program(0x${addr.toString(16)}, ${count}): unaligned or outside flash`);
      const bytes = mem(data, count);
      for (let p = 0; p < count; p += PAGE) {
        const part = hooks.during(0.7e6); // 0.7 ms per page
        const n = part === null ? PAGE : Math.floor(part * PAGE);
        for (let i = 0; i < n; i++) flash[addr + p + i] &= bytes[p + i];
        if (part !== null) return void hooks.powerOff();
      }
      return;
    }
    case ROUTINES.MC:
    case ROUTINES.C4: {
      const bytes = mem(r[1], r[2]);
      for (let i = 0; i < bytes.length; i++) mcu.writeUint8(r[0] + i, bytes[i]);
      return; // r0 stays dest
    }
    case ROUTINES.MS:
    case ROUTINES.S4:
      for (let i = 0; i < r[2]; i++) mcu.writeUint8(r[0] + i, r[1] & 0xff);
      return;
    case ROUTINES.IF:
    case ROUTINES.EX:
    case ROUTINES.FC:
    case ROUTINES.CX:
      return;
    default:
      throw new Error(`breakpoint #${code} outside the stand-in ROM's routines`);
  }
}

/** XIP_CTRL's registers read 0 (see above). */
export function fixXip(mcu) {
  const read = mcu.readUint32.bind(mcu);
  mcu.readUint32 = (address) => (address >>> 24 === 0x14 ? 0 : read(address));
}

/** Calls `onReset()` when the firmware writes SYSRESETREQ to AIRCR (0xE000ED0C). */
export function onSysReset(mcu, onReset) {
  const ppb = mcu.ppb;
  const write = ppb.writeUint32.bind(ppb);
  ppb.writeUint32 = (offset, value) => {
    if (offset === 0xd0c && value >>> 16 === 0x05fa && value & 4) return void onReset('sysresetreq');
    write(offset, value);
  };
  // rp2040js re-arms the watchdog's alarm at zero delay once its counter is 0 (the real chip
  // resets instead), which loops for ever inside the clock: the alarm is stopped here first.
  const wd = mcu.peripherals[0x40058];
  wd.onWatchdogTrigger = () => {
    wd.alarm.enable = false;
    wd.timer.enable = false;
    onReset('watchdog');
  };
}

export { FLASH };
