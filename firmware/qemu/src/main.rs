//! The fixed-point noise pipeline on a deterministic signal, printing one line per second of
//! audio (the report's levels as f32 bits, and the alarm). Built for the host it is a normal
//! program; built for thumbv6m-none-eabi or riscv32imc-unknown-none-elf it runs under QEMU with
//! semihosting (`scripts/qemu-run`). The three outputs must be identical: the firmware computes
//! on the chip exactly what the host tests check.
//!
//! `GRIDSENTRY_RUNNER_TENTHS` (build time, default 22) sets how much audio is processed, in tenths
//! of a second: `scripts/firmware-bench` builds it twice and divides the difference of the
//! executed instruction counts by the difference in samples.
#![cfg_attr(target_os = "none", no_std, no_main)]

use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::noise::{FixedChain, Meter, Mic};

const TENTHS: u32 = match option_env!("GRIDSENTRY_RUNNER_TENTHS") {
    Some(s) => parse(s),
    None => 22,
};

const fn parse(s: &str) -> u32 {
    let (b, mut i, mut n) = (s.as_bytes(), 0, 0);
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// 10 ms of signal: a 1 kHz tone (10 whole periods) plus white noise, at `amp` (24-bit peak).
fn chunk(amp: i32, seed: &mut u32, out: &mut [i32; 480]) {
    // A 1 kHz sine from a table of one period (48 samples), in Q15.
    const SINE: [i32; 48] = {
        let mut t = [0; 48];
        let mut i = 0;
        while i < 48 {
            // sin via a 5th-order polynomial on [−π, π] (const context has no libm).
            let x = (i as f64 / 48.0) * 2.0 * core::f64::consts::PI;
            let x = if x > core::f64::consts::PI { x - 2.0 * core::f64::consts::PI } else { x };
            let s = x - x * x * x / 6.0 + x * x * x * x * x / 120.0 - x * x * x * x * x * x * x / 5040.0;
            t[i] = (s * 32767.0) as i32;
            i += 1;
        }
        t
    };
    for (i, o) in out.iter_mut().enumerate() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        let noise = (*seed >> 17) as i32 - (1 << 14);
        *o = (((SINE[i % 48] * 3 + noise) as i64 * amp as i64) >> 17) as i32;
    }
}

/// The pipeline as the insn count sees it: one call per 10 ms of samples.
#[no_mangle]
#[inline(never)]
pub fn noise_pipeline(meter: &mut Meter<FixedChain>, samples: &[i32]) {
    meter.push(samples);
}

fn run(print: &mut dyn FnMut(core::fmt::Arguments)) {
    let mut meter =
        Meter::<FixedChain>::new(&Mic::INMP441, 0.0, AlarmSettings { hold_s: 1, ..Default::default() });
    let mut buf = [0i32; 480];
    let mut seed = 2463534242u32;
    for tenth in 0..TENTHS {
        // Quiet, then loud enough for the alarm, then clipping.
        let amp = match tenth {
            0..10 => 2_000,
            10..20 => 400_000,
            _ => 20_000_000,
        };
        chunk(amp, &mut seed, &mut buf);
        for _ in 0..10 {
            noise_pipeline(&mut meter, &buf);
        }
        if tenth % 10 == 9 || tenth + 1 == TENTHS {
            let r = meter.report();
            print(format_args!(
                "t={} laeq={:08x} lafmax={:08x} l10={:08x} l90={:08x} overload={} under={} alarm={} ({:.2} dB)\n",
                tenth + 1,
                r.laeq_db.to_bits(),
                r.lafmax_db.to_bits(),
                r.l10_db.unwrap_or(-1.0).to_bits(),
                r.l90_db.unwrap_or(-1.0).to_bits(),
                r.overload,
                r.under_range,
                meter.alarm(),
                r.laeq_db,
            ));
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    run(&mut |a| print!("{a}"));
}

#[cfg(target_os = "none")]
fn main_() -> ! {
    run(&mut |a| semihosting::print!("{a}"));
    semihosting::process::exit(0)
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[cortex_m_rt::entry]
fn main() -> ! {
    main_()
}

#[cfg(all(target_arch = "riscv32", target_os = "none"))]
#[riscv_rt::entry]
fn main() -> ! {
    main_()
}
