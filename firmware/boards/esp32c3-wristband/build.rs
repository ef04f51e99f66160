//! esp-hal's linker scripts for the ESP32-C3 (memory layout, boot, vectors).

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tlinkall.x");
    println!("cargo:rerun-if-changed=build.rs");
}
