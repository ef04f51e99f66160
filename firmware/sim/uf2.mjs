// UF2 images into the emulated RP2040's flash, and the mask ROM's flash boot.
//
// UF2 (https://github.com/microsoft/uf2): 512-byte blocks, each with 256 bytes for one flash
// address. The RP2040's ROM copies a UF2 dropped on its USB drive into flash; here the blocks go
// straight into rp2040js's flash array.
//
// The RP2040's mask ROM is not distributed on npm (rp2040js's demo carries a copy; the package
// does not), so `boot` does what the ROM does for a flash boot (RP2040 datasheet §2.8.1): copy the
// first 256 bytes of flash (the second-stage boot loader, boot2) to the top of SRAM, check their
// CRC32, and enter them with LR = 0 so boot2 configures the flash interface (the emulated SSI)
// and jumps through the vector table at 0x10000100. Everything after that is the image's code.

const MAGIC0 = 0x0a324655;
const MAGIC1 = 0x9e5d5157;
const MAGIC_END = 0x0ab16f30;
const FAMILY_RP2040 = 0xe48bff56;
const FLAG_FAMILY = 0x2000;
const FLASH = 0x10000000;
const BOOT2_SRAM = 0x20041f00;

/** Loads `bytes` (a UF2 file) into `rp2040.flash`; returns the number of payload bytes. */
export function loadUf2(rp2040, bytes) {
  if (bytes.length === 0 || bytes.length % 512 !== 0) {
    throw new Error(`not a UF2 file: ${bytes.length} bytes is not a whole number of 512-byte blocks`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let loaded = 0;
  for (let at = 0; at < bytes.length; at += 512) {
    const word = (o) => view.getUint32(at + o, true);
    if (word(0) !== MAGIC0 || word(4) !== MAGIC1 || word(508) !== MAGIC_END) {
      throw new Error(`UF2 block ${at / 512}: bad magic numbers`);
    }
    const [flags, addr, size, family] = [word(8), word(12), word(16), word(28)];
    if (flags & FLAG_FAMILY && family !== FAMILY_RP2040) {
      throw new Error(`UF2 block ${at / 512}: family 0x${family.toString(16)} is not the RP2040's`);
    }
    if (size > 476 || addr < FLASH || addr + size > FLASH + rp2040.flash.length) {
      throw new Error(`UF2 block ${at / 512}: ${size} bytes at 0x${addr.toString(16)} are outside flash`);
    }
    rp2040.flash.set(bytes.subarray(at + 32, at + 32 + size), addr - FLASH);
    loaded += size;
  }
  return loaded;
}

/** CRC-32 as boot2's checksum uses it: polynomial 0x04c11db7, MSB first, init ~0, no final xor. */
function boot2Crc(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b << 24;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    }
  }
  return crc >>> 0;
}

/** The ROM's flash boot: boot2 into SRAM (checked), then run it as the ROM would. */
export function boot(rp2040) {
  const boot2 = rp2040.flash.subarray(0, 256);
  const stored = new DataView(boot2.buffer, boot2.byteOffset, 256).getUint32(252, true);
  const crc = boot2Crc(boot2.subarray(0, 252));
  if (crc !== stored) {
    throw new Error(`no valid boot2 at the start of flash (CRC 0x${crc.toString(16)}, stored 0x${stored.toString(16)}): the ROM would not boot this image`);
  }
  rp2040.sram.set(boot2, BOOT2_SRAM - 0x20000000);
  const { core } = rp2040;
  core.SP = BOOT2_SRAM; // the ROM's stack ends where boot2 begins (its reset SP)
  core.LR = 0;
  core.PC = BOOT2_SRAM;
}
