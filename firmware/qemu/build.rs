//! Memory layout of the two QEMU machines (not of the real chips): `-M microbit` (nRF51, ARMv6-M:
//! flash 256 KiB at 0, RAM 16 KiB at 0x2000_0000) and `-M virt` (RAM from 0x8000_0000, where
//! `-bios none` starts executing).

use std::path::PathBuf;

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        return; // the host build is a normal program
    }
    let memory = match arch.as_str() {
        "arm" => "MEMORY {\n  FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 16K\n}\n",
        "riscv32" => {
            "MEMORY {\n  RAM : ORIGIN = 0x80000000, LENGTH = 16M\n}\n\
             REGION_ALIAS(\"REGION_TEXT\", RAM);\nREGION_ALIAS(\"REGION_RODATA\", RAM);\n\
             REGION_ALIAS(\"REGION_DATA\", RAM);\nREGION_ALIAS(\"REGION_BSS\", RAM);\n\
             REGION_ALIAS(\"REGION_HEAP\", RAM);\nREGION_ALIAS(\"REGION_STACK\", RAM);\n"
        }
        other => panic!("no QEMU machine for {other}"),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("memory.x"), memory).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GRIDSENTRY_RUNNER_TENTHS");
}
