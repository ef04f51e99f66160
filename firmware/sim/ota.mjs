// Fleet updates on the emulated RP2040 under power cuts (scripts/firmware-sim --ota).
//
// The chip (rp2040js, chip.mjs's stand-in ROM and fixes) runs the installer image (boot loader +
// v1); its UART1 is bridged byte for byte to a real broker (a TCP connection per MQTT session,
// fed into the chip at 921600 baud as its RX FIFO has room); the real daemon rolls images out.
// Flash persists across power cycles; everything else starts afresh.
//
//   node ota.mjs --rp2040js DIR --uf2 INSTALLER --images JSON --gridsentry BIN --config FILE
//                --api URL --token FILE --broker PORT [--cuts 50] [--seed N]
//
// JSON: {"v1": "1.0.0", "v2": "2.0.0", "v3": "3.0.0", "v4": "4.0.0", "bins": {"1.0.0": "…app.bin", …}}
// v3 never proves itself (its first report is 10 minutes away); v4 is stored with a signature
// of another key. Prints ota_sim_* lines; exits 1 when a check fails.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fixUart, fixXip, onSysReset, romCall, romImage } from './chip.mjs';
import { Inmp441 } from './inmp441.mjs';
import { boot, loadUf2 } from './uf2.mjs';

const { values: opt } = parseArgs({
  options: {
    rp2040js: { type: 'string' }, uf2: { type: 'string' }, images: { type: 'string' }, gridsentry: { type: 'string' },
    config: { type: 'string' }, api: { type: 'string' }, token: { type: 'string' }, broker: { type: 'string' },
    cuts: { type: 'string', default: '50' }, seed: { type: 'string' },
  },
});
const { RP2040, GPIOPinState, ConsoleLogger, LogLevel } = await import(
  pathToFileURL(`${opt.rp2040js}/node_modules/rp2040js/dist/esm/index.js`).href
);
const images = JSON.parse(readFileSync(opt.images, 'utf8'));
const bins = Object.fromEntries(Object.entries(images.bins).map(([v, p]) => [v, readFileSync(p)]));
const token = readFileSync(opt.token, 'utf8').trim();
const SYS_HZ = 125_000_000;
const NS = 1e9 / SYS_HZ;
const ACTIVE = 0xa000; // partitions.x, from the start of flash
const BYTE_CYCLES = Math.ceil((SYS_HZ * 10) / 921_600); // 8N1
const seed = Number(opt.seed ?? Math.floor(Math.random() * 2 ** 31));
let rng = seed >>> 0; // mulberry32
const random = () => {
  rng = (rng + 0x6d2b79f5) >>> 0;
  let t = rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};
const say = (k, v) => console.log(`ota_sim_${k} ${v}`);
const debug = process.env.OTA_SIM_DEBUG ? (...a) => console.error('debug:', ...a) : () => {};
let failures = 0;
const check = (ok, what) => {
  if (!ok) {
    failures++;
    console.error(`firmware-sim --ota: ${what}`);
  }
  return ok;
};

/** The chip: flash that survives power cycles, and the rest made anew at each power-on. */
class Bench {
  constructor(installer) {
    this.flash = new Uint8Array(16 * 1024 * 1024).fill(0xff);
    this.cycle = 0; // emulated time, across power cycles
    this.lines = []; // UART0 lines: { s, text }
    this.states = []; // update states the chip published: { s, state }
    this.cutAt = Infinity;
    const probe = new RP2040();
    probe.flash = this.flash;
    probe.flashView = new DataView(this.flash.buffer);
    loadUf2(probe, installer);
  }

  powerOn() {
    const mcu = new RP2040();
    mcu.logger = new ConsoleLogger(LogLevel.Error);
    mcu.loadBootrom(romImage());
    mcu.flash = this.flash;
    mcu.flash16 = new Uint16Array(this.flash.buffer);
    mcu.flashView = new DataView(this.flash.buffer);
    for (const u of mcu.uart) fixUart(u);
    fixXip(mcu);
    this.reset = null;
    this.off = false;
    const hooks = {
      during: (ns) => {
        const cycles = Math.ceil(ns / NS);
        if (this.cutAt >= this.cycle && this.cutAt < this.cycle + cycles) {
          const part = (this.cutAt - this.cycle) / cycles;
          this.cycle = this.cutAt;
          return part;
        }
        mcu.clock.tick(ns);
        this.cycle += cycles;
        return null;
      },
      powerOff: () => (this.off = true),
    };
    mcu.onBreak = (code) => romCall(mcu, code, this.flash, hooks);
    onSysReset(mcu, (why) => (this.reset = why));
    if (process.env.OTA_SIM_DEBUG) {
      const wd = mcu.peripherals[0x40058];
      const w = wd.writeUint32.bind(wd);
      this.feeds = 0;
      wd.writeUint32 = (o, v) => {
        if (o === 4) this.feeds++;
        if (o === 0) debug(s(this.cycle), 'watchdog ctrl', v.toString(16));
        w(o, v);
      };
    }
    boot(mcu);
    for (const pio of mcu.pio) pio.run = () => {};
    // A quiet room at the microphone.
    let n = 0;
    this.mic = new Inmp441(mcu, { sd: 12, sck: 10, ws: 11 }, () => Math.round(2000 * Math.sin(n++ / 7.6)), () => this.cycle, GPIOPinState);
    let line = '';
    mcu.uart[0].onByte = (b) => {
      if (b !== 10) return void (line += String.fromCharCode(b));
      this.lines.push({ s: this.cycle, text: line });
      if (!line.startsWith('report')) debug((this.cycle / SYS_HZ).toFixed(3), 'uart0', line);
      line = '';
    };
    this.tx = '';
    this.rx = [];
    this.nextFeed = 0;
    mcu.uart[1].onByte = (b) => this.fromChip(b);
    this.mcu = mcu;
    this.pioNext = this.cycle;
  }

  /** A byte the chip sent on UART1: to the broker (a new TCP connection per session). */
  fromChip(b) {
    if (!this.sock) {
      const sock = net.connect(Number(opt.broker), '127.0.0.1');
      // The chip's keep-alive (30 s) runs in emulated time, slower than the broker's clock: the
      // bridge pings the broker itself every 10 s and drops the answers to its own pings.
      const framer = { buf: [], ours: 0 };
      const ping = setInterval(() => {
        if (sock.writable) {
          framer.ours++;
          sock.write(Buffer.from([0xc0, 0]));
        }
      }, 10_000);
      sock.on('data', (d) => {
        if (sock !== this.sock) return;
        framer.buf.push(...d);
        // Whole packets only, so a PINGRESP is recognised at a packet boundary.
        for (;;) {
          const b = framer.buf;
          let len = 0, mul = 1, at = 1;
          for (; at < b.length && at < 5; at++) {
            len += (b[at] & 0x7f) * mul;
            mul *= 128;
            if (!(b[at] & 0x80)) break;
          }
          if (at >= b.length || b.length < at + 1 + len) break;
          const packet = b.splice(0, at + 1 + len);
          if (packet[0] === 0xd0 && framer.ours > 0) {
            framer.ours--;
            continue;
          }
          this.rx.push(...packet);
        }
      });
      sock.on('close', () => clearInterval(ping));
      sock.on('error', () => {});
      sock.on('close', () => {
        debug((this.cycle / SYS_HZ).toFixed(3), 'broker closed the connection');
        if (sock === this.sock) this.sock = null;
      });
      debug((this.cycle / SYS_HZ).toFixed(3), 'new broker connection');
      this.sock = sock;
    }
    this.sock.write(Buffer.from([b]));
    // The update state in every report the chip publishes (`…/ota/state`).
    this.tx = (this.tx + String.fromCharCode(b)).slice(-400);
    const m = /"state":"(idle|downloading|verifying|rebooting|confirmed|rolled_back|failed)"/.exec(this.tx);
    if (m) {
      this.states.push({ s: this.cycle, state: m[1] });
      debug((this.cycle / SYS_HZ).toFixed(3), 'state', m[1], /"offset":(\d+)/.exec(this.tx)?.[1] ?? '');
      this.tx = '';
    }
  }

  powerOff() {
    this.sock?.destroy();
    this.sock = null;
    this.mcu = null;
  }

  /** Runs `seconds` of emulated time, or until `until()` holds, a reset, or the cut. */
  async run(seconds, until = () => false) {
    const end = this.cycle + seconds * SYS_HZ;
    let slice = 0;
    while (this.cycle < end && !until()) {
      const mcu = this.mcu;
      const sm = mcu.pio[1].machines[0];
      const stop = Math.min(end, this.cycle + SYS_HZ / 2000);
      while (this.cycle < stop) {
        if (this.cycle >= this.cutAt) return 'cut';
        const pioOn = sm.enabled;
        const divider = (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
        if (!pioOn) this.pioNext = this.cycle;
        if (mcu.core.waiting) {
          const toAlarm = mcu.clock.nanosToNextAlarm > 0 ? Math.ceil(mcu.clock.nanosToNextAlarm / NS) : Infinity;
          const toPio = pioOn ? Math.max(1, Math.ceil(this.pioNext - this.cycle)) : Infinity;
          const toFeed = this.rx.length && !mcu.uart[1].rxFIFO.full ? Math.max(1, this.nextFeed - this.cycle) : Infinity;
          const step = Math.max(1, Math.min(toAlarm, toPio, toFeed, stop - this.cycle, this.cutAt - this.cycle));
          mcu.clock.tick(step * NS);
          this.cycle += step;
        } else {
          const c = mcu.core.executeInstruction();
          mcu.clock.tick(c * NS);
          this.cycle += c;
        }
        if (this.off) return 'cut';
        if (this.reset) return this.reset;
        while (pioOn && this.pioNext <= this.cycle) {
          mcu.pio[1].step();
          this.pioNext += divider;
        }
        const u = mcu.uart[1];
        if (this.rx.length && this.cycle >= this.nextFeed && !u.rxFIFO.full) {
          u.feedByte(this.rx.shift());
          this.nextFeed = this.cycle + BYTE_CYCLES;
        }
      }
      if (++slice % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    return this.cycle >= end ? 'time' : 'done';
  }
}

const s = (cycles) => (cycles / SYS_HZ).toFixed(3);
const cli = (...args) => execFileSync(opt.gridsentry, ['rollout', '--config', opt.config, ...args], { encoding: 'utf8' });
async function api(path) {
  const r = await fetch(`${opt.api}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return r.json();
}
/** Rolls `version` out to the chip; the roll-out's id. */
function rollout(version) {
  // The daemon learns the chip from its retained report a moment after the chip sent it.
  for (let tries = 0; ; tries++) {
    try {
      const out = cli('create', '--firmware', version, '--match', 'all', '--waves', '100', '--abort-at-failed-pct', '100');
      return Number(/^rollout (\d+)/.exec(out)[1]);
    } catch (e) {
      if (tries > 50) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}
let known = { id: 0, state: null, at: 0 };
async function targetState(id) {
  if (known.id === id && Date.now() - known.at < 200) return known.state;
  const r = await api(`/api/v1/rollouts/${id}`);
  known = { id, state: r.devices?.[0]?.state ?? null, error: r.devices?.[0]?.error, at: Date.now() };
  return known.state;
}
const lastBoot = (b) => [...b.lines].reverse().find((l) => l.text.startsWith('boot '));
const runningVersion = (b) => lastBoot(b)?.text.split(' ')[2];

/** Runs until roll-out `id` leaves the device in an end state (or `seconds` pass). */
async function settle(b, id, seconds) {
  let state = null;
  const ends = ['confirmed', 'rolled_back', 'failed'];
  let res;
  do {
    res = await b.run(0.25);
    state = await targetState(id);
    if (res !== 'time') {
      // A restart into the new image (or the watchdog): the chip starts again, flash kept.
      debug(s(b.cycle), 'restart:', res);
      b.powerOff();
      b.powerOn();
    }
    seconds -= 0.25;
    if (process.env.OTA_SIM_DEBUG && seconds % 5 < 0.25 && b.mcu) {
      const hist = new Map();
      for (let i = 0; i < 200000; i++) {
        if (b.mcu.core.waiting) break;
        b.mcu.core.executeInstruction();
        hist.set(b.mcu.core.PC, (hist.get(b.mcu.core.PC) || 0) + 1);
      }
      debug(s(b.cycle), 'feeds', b.feeds, 'counter', b.mcu.peripherals[0x40058].timer.counter, 'waiting', b.mcu.core.waiting, [...hist.entries()].sort((x, y) => y[1] - x[1]).slice(0, 6).map(([pc, n]) => pc.toString(16) + ':' + n).join(' '));
    }
  } while (!ends.includes(state) && seconds > 0);
  return state;
}

function activeHolds(b, version) {
  const bin = bins[version];
  return !!bin && Buffer.compare(Buffer.from(b.flash.subarray(ACTIVE, ACTIVE + bin.length)), bin) === 0;
}

const started = Date.now();
const bench = new Bench(readFileSync(opt.uf2));
bench.powerOn();
await bench.run(30, () => runningVersion(bench) === images.v1 && bench.states.length > 0);
check(runningVersion(bench) === images.v1, `the installer image did not boot ${images.v1} (${lastBoot(bench)?.text})`);
if (process.env.OTA_SIM_DEBUG) {
  console.error(bench.lines.slice(0, 5), bench.states.slice(0, 5), s(bench.cycle), bench.sock ? 'connected' : 'no socket', bench.rx.length);
}
say('installer_boot', lastBoot(bench)?.text ?? 'none');

// A clean update first: v1 → v2, timing its phases on the chip's own reports.
let id = rollout(images.v2);
const t0 = bench.cycle;
const first = await settle(bench, id, 120);
const at = (state) => bench.states.find((x) => x.s >= t0 && x.state === state)?.s;
const trialBoot = bench.lines.find((l) => l.s >= t0 && l.text.includes(`${images.v2}`) && l.text.includes(' trial '))?.s;
const phases = {
  download: [at('downloading'), at('verifying')],
  verify: [at('verifying'), at('rebooting')],
  swap: [at('rebooting'), trialBoot],
};
check(first === 'confirmed' && runningVersion(bench) === images.v2, `v2 did not confirm (${first}, running ${runningVersion(bench)})`);
check(bench.lines.some((l) => l.s >= t0 && l.text === 'ota proved'), 'v2 never said it proved itself');
check(activeHolds(bench, images.v2), 'ACTIVE does not hold the v2 image');
// The update image carries no device settings: the new image reads the installer's sector.
const v2Boot = lastBoot(bench)?.text ?? '';
check(v2Boot.includes(' sim/box-1 ') && v2Boot.endsWith(' settings=sector'), `v2 did not take the device's settings sector (${v2Boot})`);
for (const [k, [a, z]] of Object.entries(phases)) say(`phase_${k}_s`, a && z ? s(z - a) : 'none');
say('update_s', at('downloading') && trialBoot ? s(trialBoot - at('downloading')) : 'none');

// Power cuts at random points of download, verification and swap.
const cuts = Number(opt.cuts);
let [bricked, reverted, confirmed, failed] = [0, 0, 0, 0];
const kinds = Object.keys(phases);
for (let i = 0; i < cuts && failures === 0; i++) {
  const from = runningVersion(bench);
  const to = from === images.v1 ? images.v2 : images.v1;
  id = rollout(to);
  const kind = kinds[i % kinds.length];
  const [startState, len] = {
    download: ['downloading', phases.download[1] - phases.download[0]],
    verify: ['verifying', phases.verify[1] - phases.verify[0]],
    swap: ['rebooting', phases.swap[1] - phases.swap[0]],
  }[kind];
  const mark = bench.cycle;
  let res = await bench.run(120, () => bench.states.some((x) => x.s >= mark && x.state === startState));
  bench.cutAt = bench.cycle + Math.floor(random() * len);
  while (res !== 'cut') {
    res = await bench.run(30);
    if (res !== 'cut' && res !== 'time') {
      bench.powerOff();
      bench.powerOn();
    }
  }
  const cutAt = bench.cutAt;
  bench.cutAt = Infinity;
  bench.powerOff();
  bench.cycle += SYS_HZ / 20; // 50 ms without power
  bench.powerOn();
  const booted = await bench.run(15, () => bench.lines.some((l) => l.s > cutAt && l.text.startsWith('boot ')));
  if (!check(bench.lines.some((l) => l.s > cutAt && l.text.startsWith('boot ')), `cut ${i} (${kind} at ${s(cutAt)} s): no boot within 15 s (${booted})`)) {
    bricked++;
    break;
  }
  const end = await settle(bench, id, 120);
  const running = runningVersion(bench);
  if (end === 'confirmed') confirmed++;
  else if (end === 'rolled_back') reverted++;
  else failed++;
  check(end === 'confirmed' || end === 'rolled_back', `cut ${i} (${kind}): ended ${end} (${known.error ?? ''})`);
  check(activeHolds(bench, running), `cut ${i} (${kind}): ACTIVE is not the whole signed ${running} image`);
  console.error(`cut ${i + 1}/${cuts}: ${kind} at +${s(cutAt - mark)} s → ${end}, running ${running}`);
}
say('power_cuts', `${cuts} bricked=${bricked} reverted=${reverted} confirmed=${confirmed} failed=${failed} seed=${seed}`);
console.log(`ota_sim_power_cuts=${cuts} bricked=${bricked} reverted=${reverted} confirmed=${confirmed}`);

// v3 never proves itself: back on what ran before, after the next restart.
if (failures === 0) {
  const before = runningVersion(bench);
  id = rollout(images.v3);
  const t3 = bench.cycle;
  const end = await settle(bench, id, 180);
  const tried = bench.lines.some((l) => l.s >= t3 && l.text.includes(` ${images.v3} `) && l.text.includes(' trial '));
  check(tried, 'v3 never booted on trial');
  check(end === 'rolled_back' && runningVersion(bench) === before && activeHolds(bench, before), `v3: ${end}, running ${runningVersion(bench)} (expected rolled_back to ${before})`);
  say('never_confirms', `${end} back_on=${runningVersion(bench)}`);
}
// v4's signature is another key's: refused, never swapped in.
if (failures === 0) {
  const before = runningVersion(bench);
  id = rollout(images.v4);
  const t4 = bench.cycle;
  const end = await settle(bench, id, 120);
  check(end === 'failed' && /signature/.test(known.error ?? ''), `v4: ${end} (${known.error})`);
  check(!bench.lines.some((l) => l.s >= t4 && l.text.includes(` ${images.v4} `)), 'v4 booted');
  check(activeHolds(bench, before), 'ACTIVE changed after the refused v4');
  say('bad_signature', `${end} error="${known.error}" active=${before}`);
}
say('emulated_s', s(bench.cycle));
say('wall_s', ((Date.now() - started) / 1000).toFixed(1));
process.exit(failures ? 1 : 0);
