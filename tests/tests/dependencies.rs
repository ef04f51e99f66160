//! The lock file carries no crate with a known RustSec advisory (those found so far; see
//! vendor/README.md and docs/development.md): a `cargo update` or a new dependency that brings
//! one back fails here, not in a security review.

/// (crate, versions affected: `None` all, `Some(p)` those starting with p, why).
const REFUSED: &[(&str, Option<&str>, &str)] = &[
    ("rustls-webpki", Some("0.100."), "RUSTSEC-2026-0098/-0099/-0104"),
    ("rustls-webpki", Some("0.101."), "RUSTSEC-2026-0098/-0099/-0104"),
    ("rustls-webpki", Some("0.102."), "RUSTSEC-2026-0098/-0099/-0104"),
    ("h2", Some("0.3."), "RUSTSEC-2026-0258"),
    ("instant", None, "unmaintained"),
    ("rustls-pemfile", None, "unmaintained"),
    ("rustls", Some("0.21."), "brings rustls-webpki 0.101"),
];

#[test]
fn the_lock_file_has_no_crate_with_a_known_advisory() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    let mut found = Vec::new();
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = \"") {
            name = n.trim_end_matches('"');
        } else if let Some(v) = line.strip_prefix("version = \"") {
            let v = v.trim_end_matches('"');
            for (crate_, versions, why) in REFUSED {
                if name == *crate_ && versions.is_none_or(|p| v.starts_with(p)) {
                    found.push(format!("{name} {v}: {why}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "Cargo.lock has: {found:?}");
    // rustls-webpki, where present, has the fixes (0.103.13 or later).
    let webpki =
        lock.split("name = \"rustls-webpki\"\nversion = \"").skip(1).map(|r| r.split('"').next().unwrap());
    for v in webpki {
        let patch: u32 = v.strip_prefix("0.103.").and_then(|p| p.parse().ok()).unwrap_or(0);
        assert!(patch >= 13, "rustls-webpki {v}");
    }
}
