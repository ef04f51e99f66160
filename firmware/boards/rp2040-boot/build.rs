//! The boot loader's place in flash: BOOT2, then its own 32 K; the partitions it manages come
//! from ../rp2040/partitions.x, the one layout the app is linked against too.

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let partitions = std::fs::read_to_string("../rp2040/partitions.x").unwrap();
    std::fs::write(
        out.join("memory.x"),
        format!(
            "MEMORY {{\n  BOOT2 : ORIGIN = 0x10000000, LENGTH = 0x100\n  FLASH : ORIGIN = 0x10000100, LENGTH = 28K - 0x100\n  RAM : ORIGIN = 0x20000000, LENGTH = 264K\n}}\n{partitions}"
        ),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../rp2040/partitions.x");
}
