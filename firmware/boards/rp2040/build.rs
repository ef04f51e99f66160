//! RP2040 memory layout (2 MB flash on the Pico W, 264 KB RAM): the app runs from the ACTIVE
//! partition behind the boot loader (`partitions.x`, shared with boards/rp2040-boot). BOOT2 is
//! named because embassy-rp's linker script places its second-stage boot loader there; the
//! boot loader's image carries it, the app's update image leaves it out.

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let partitions = std::fs::read_to_string("partitions.x").unwrap();
    std::fs::write(
        out.join("memory.x"),
        format!(
            "MEMORY {{\n  BOOT2 : ORIGIN = 0x10000000, LENGTH = 0x100\n  FLASH : ORIGIN = 0x1000A000, LENGTH = 512K\n  RAM : ORIGIN = 0x20000000, LENGTH = 264K\n}}\n{partitions}"
        ),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=partitions.x");
}
