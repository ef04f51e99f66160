//! Stamps the build with its commit (`gridsentry_build_info{commit}`): `GRIDSENTRY_COMMIT` when
//! set (container builds without `.git`), else `git rev-parse`, else `unknown`.

fn main() {
    println!("cargo:rerun-if-env-changed=GRIDSENTRY_COMMIT");
    for f in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let commit = std::env::var("GRIDSENTRY_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let out =
            std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=GRIDSENTRY_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
