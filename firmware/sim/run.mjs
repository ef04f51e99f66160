// Runs a noise-box UF2 on rp2040js (the RP2040 emulator behind Wokwi) with an INMP441 model on
// its I2S pins, and prints what the chip did as `rp2040_sim_*` lines. Driven by
// scripts/firmware-sim, which installs rp2040js from npm and passes its directory.
//
// rp2040js runs each PIO block on its own JavaScript timer, unrelated to the CPU's clock; here the
// PIO is stepped from the same loop as the CPU, once per state-machine clock (the system clock
// divided by SM0's CLKDIV), so the bit clock, the DMA and the firmware's timing relate as on the
// chip: 125 MHz system clock, cycles as rp2040js counts them per instruction.
//
//   node run.mjs --rp2040js DIR --uf2 FILE [--seconds S] [--signal DB:S,DB:S... [--freq HZ] |
//                --wav FILE] [--record WAV] [--quiet-board]
//
// --wav plays a recording instead (48 kHz integer PCM, 16/24/32-bit, the first channel, plain or
// WAVE_FORMAT_EXTENSIBLE; samples are 24-bit at the microphone, as the host board reads WAVs),
// then silence; rp2040_sim_laeq_db is then the whole recording's LAeq (the energetic mean of the
// reports that cover it).

import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Inmp441 } from './inmp441.mjs';
import { boot, loadUf2 } from './uf2.mjs';
import { fixUart, fixXip, romCall, romImage } from './chip.mjs';

const { values: opt } = parseArgs({
  options: {
    rp2040js: { type: 'string' },
    uf2: { type: 'string' },
    seconds: { type: 'string', default: '7.5' },
    signal: { type: 'string', default: '68.5:2,94:2,68.5:2,65:2' },
    freq: { type: 'string', default: '1000' },
    record: { type: 'string' },
    wav: { type: 'string' },
    'quiet-board': { type: 'boolean', default: false },
  },
});
if (!opt.rp2040js || !opt.uf2) throw new Error('--rp2040js DIR and --uf2 FILE are required');
const { RP2040, GPIOPinState, ConsoleLogger, LogLevel } = await import(
  pathToFileURL(`${opt.rp2040js}/node_modules/rp2040js/dist/esm/index.js`).href
);

const SYS_HZ = 125_000_000;
const NS_PER_CYCLE = 1e9 / SYS_HZ;
const FS = 48_000;
const PINS = { sd: 12, sck: 10, ws: 11, led: 14, buzzer: 15 };

// The signal: segments of a sine at a sound pressure level, for a −26 dBFS microphone (94 dB SPL
// = −26 dBFS, 24-bit full scale 8388607), the same scale as the host board's signal.rs.
const segments = opt.signal.split(',').map((s) => {
  const [db, seconds] = s.split(':').map(Number);
  if (!(seconds > 0) || !Number.isFinite(db)) throw new Error(`--signal: bad segment "${s}" (DB:SECONDS)`);
  return { db, amp: 10 ** ((db - 94 - 26) / 20) * 8388607, samples: Math.round(seconds * FS) };
});
// The report that shows the level: the first one wholly inside the loudest segment.
const levelReport = opt.wav ? null : (() => {
  let start = 0;
  const at = segments.map((s) => ((start += s.samples), { ...s, start: start - s.samples }));
  const loud = at.reduce((a, b) => (b.db > a.db ? b : a));
  return Math.ceil(loud.start / FS);
})();
const freq = Number(opt.freq);
const recording = opt.wav ? readWav(opt.wav) : null;
const served = [];
function nextSample() {
  if (recording) {
    const v = recording[served.length] ?? 0;
    served.push(v);
    return v;
  }
  let n = served.length;
  let seg = segments.find((s) => (n < s.samples ? true : ((n -= s.samples), false)));
  seg ??= { amp: 0 };
  const v = Math.max(-8388608, Math.min(8388607, Math.round(seg.amp * Math.sin((2 * Math.PI * freq * served.length) / FS))));
  served.push(v);
  return v;
}

const mcu = new RP2040();
mcu.logger = new ConsoleLogger(LogLevel.Error);
mcu.loadBootrom(romImage());
for (const u of mcu.uart) fixUart(u);
fixXip(mcu);
// Flash routines of the stand-in ROM (chip.mjs); no power cuts in this run.
mcu.onBreak = (code) => romCall(mcu, code, mcu.flash, { during: () => null, powerOff: () => {} });
const loaded = loadUf2(mcu, readFileSync(opt.uf2));
boot(mcu);
// The PIO blocks are stepped below, not on their own timers.
for (const pio of mcu.pio) pio.run = () => {};

let cycle = 0;
let busyAfterFirstFrame = 0;
const mic = new Inmp441(mcu, PINS, nextSample, () => cycle, GPIOPinState);

const events = [];
for (const name of ['buzzer', 'led']) {
  mcu.gpio[PINS[name]].addListener((state) => events.push({ name, on: state === GPIOPinState.High, s: cycle / SYS_HZ }));
}
const reports = [];
let overruns = 0;
let bootLine = null;
let line = '';
mcu.uart[0].onByte = (b) => {
  if (b !== 10) return void (line += String.fromCharCode(b));
  if (!opt['quiet-board']) process.stderr.write(`board: ${line}\n`);
  const m = /^report seq=(\d+) laeq_cdb=(\d+) lafmax_cdb=(\d+) overruns=(\d+)$/.exec(line);
  if (line.startsWith('boot ')) bootLine = line;
  if (m) {
    reports.push({ seq: Number(m[1]), laeq: Number(m[2]) / 100, lafmax: Number(m[3]) / 100 });
    overruns = Number(m[4]);
  }
  line = '';
};

const { core, clock } = mcu;
const pio1 = mcu.pio[1];
const sm0 = pio1.machines[0];
const end = Number(opt.seconds) * SYS_HZ;
let pioNext = 0;
const started = process.hrtime.bigint();
while (cycle < end) {
  const divider = (sm0.clockDivInt || 65536) + sm0.clockDivFrac / 256;
  const pioOn = sm0.enabled;
  if (!pioOn) pioNext = cycle;
  if (core.waiting) {
    // Asleep (WFI/WFE): skip to the next timer, DMA or PIO event.
    const toAlarm = clock.nanosToNextAlarm > 0 ? Math.ceil(clock.nanosToNextAlarm / NS_PER_CYCLE) : Infinity;
    const toPio = pioOn ? Math.max(1, Math.ceil(pioNext - cycle)) : Infinity;
    const step = Math.min(toAlarm, toPio, end - cycle);
    clock.tick(step * NS_PER_CYCLE);
    cycle += step;
  } else {
    const c = core.executeInstruction();
    clock.tick(c * NS_PER_CYCLE);
    cycle += c;
    if (mic.frames > 0) busyAfterFirstFrame += c;
  }
  while (pioOn && pioNext <= cycle) {
    pio1.step();
    pioNext += divider;
  }
}
const wall = Number(process.hrtime.bigint() - started) / 1e9;

if (opt.record) writeFileSync(opt.record, wav24(served.slice(0, mic.frames)));
const firstOn = events.find((e) => e.name === 'buzzer' && e.on);
const offAfter = firstOn && events.find((e) => e.name === 'buzzer' && !e.on && e.s > firstOn.s);
const ledAgrees = events.filter((e) => e.name === 'led').map((e) => e.on).join() === events.filter((e) => e.name === 'buzzer').map((e) => e.on).join();
// With --wav: the energetic mean of the reports wholly inside the recording (the meter starts
// with the first frame, so report k covers seconds k..k+1 of the recording).
const wholeSeconds = recording ? Math.floor(recording.length / FS) : 0;
const inWav = reports.filter((r) => r.seq < wholeSeconds);
const steady = recording
  ? inWav.length ? { laeq: 10 * Math.log10(inWav.reduce((a, r) => a + 10 ** (r.laeq / 10), 0) / inWav.length) } : null
  : reports.find((r) => r.seq === levelReport);
const framesSeconds = mic.frames > 0 ? (cycle - mic.firstFrameCycle) / SYS_HZ : 0;
const out = [
  ['seconds', (cycle / SYS_HZ).toFixed(3)],
  ['boot', bootLine ?? 'none'],
  ['image_bytes', loaded],
  ['frames', mic.frames],
  ['frame_rate_hz', mic.frameRate(SYS_HZ).toFixed(1)],
  ['reports', reports.length],
  ['laeq_db', steady ? steady.laeq.toFixed(2) : 'none'],
  ['laeq_report', recording ? `0-${inWav.length ? inWav[inWav.length - 1].seq : 'none'} (whole recording)` : levelReport],
  ['alarm', firstOn ? 'on' : 'off'],
  ['alarm_on_s', firstOn ? firstOn.s.toFixed(3) : 'none'],
  ['alarm_off_s', offAfter ? offAfter.s.toFixed(3) : 'none'],
  ['led_follows_buzzer', ledAgrees ? 'yes' : 'no'],
  ['overruns', overruns],
  ['clock_stalls', mic.stalls.length],
  ['clock_stalls_at_s', mic.stalls.slice(0, 5).map((c) => (c / SYS_HZ).toFixed(4)).join(',') || 'none'],
  ['cycles_per_sample', mic.frames ? Math.round(busyAfterFirstFrame / mic.frames) : 'none'],
  ['cpu_load_percent', framesSeconds ? ((100 * busyAfterFirstFrame) / (framesSeconds * SYS_HZ)).toFixed(1) : 'none'],
  ['wall_s', wall.toFixed(1)],
];
for (const r of reports) console.log(`rp2040_sim_report ${r.seq} laeq_db=${r.laeq.toFixed(2)} lafmax_db=${r.lafmax.toFixed(2)}`);
for (const [k, v] of out) console.log(`rp2040_sim_${k} ${v}`);

/** The first channel of a 48 kHz integer PCM WAV, as 24-bit samples. */
function readWav(path) {
  const b = readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${path}: not a WAV file`);
  let at = 12;
  let fmt = null;
  while (at + 8 <= b.length) {
    const id = b.toString('ascii', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      fmt = { format: b.readUInt16LE(at + 8), channels: b.readUInt16LE(at + 10), rate: b.readUInt32LE(at + 12), bits: b.readUInt16LE(at + 22) };
      // WAVE_FORMAT_EXTENSIBLE: the real format is the SubFormat GUID's first two bytes (PCM = 1,
      // GUID 00000001-0000-0010-8000-00aa00389b71), and the valid bits may be fewer than the
      // container's (24 valid in 32): the samples are still read at the container's width.
      if (fmt.format === 0xfffe && size >= 40) {
        const guidTail = b.toString('hex', at + 8 + 26, at + 8 + 40);
        fmt.format = guidTail === '000000001000800000aa00389b71' ? b.readUInt16LE(at + 8 + 24) : -1;
        fmt.validBits = b.readUInt16LE(at + 8 + 18);
      }
    } else if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.rate !== FS || ![16, 24, 32].includes(fmt.bits)) {
        throw new Error(`${path}: need 48 kHz integer PCM (16/24/32-bit, plain or extensible), got ${JSON.stringify(fmt)}`);
      }
      const width = fmt.bits / 8;
      const frame = width * fmt.channels;
      const n = Math.floor(Math.min(size, b.length - at - 8) / frame);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = b.readIntLE(at + 8 + i * frame, width);
        out[i] = fmt.bits === 16 ? v << 8 : fmt.bits === 32 ? v >> 8 : v;
      }
      return out;
    }
    at += 8 + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

/** A mono 48 kHz 24-bit PCM WAV of `samples`. */
function wav24(samples) {
  const data = Buffer.alloc(samples.length * 3);
  samples.forEach((s, i) => data.writeIntLE(s, i * 3, 3));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(FS, 24);
  h.writeUInt32LE(FS * 3, 28);
  h.writeUInt16LE(3, 32);
  h.writeUInt16LE(24, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
