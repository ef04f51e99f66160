//! Secrets are named, not written: `{ env = "NAME" }` or `{ file = "/path" }`. A config file
//! therefore never holds a secret and may be world-readable; a secret *file* may not: the daemon
//! refuses to start when one is readable by every user (as ssh does with keys).

use serde::Deserialize;
use std::path::PathBuf;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Secret {
    /// An environment variable.
    Env(String),
    /// A file (its first line; trailing whitespace is dropped).
    File(PathBuf),
    /// A value given on the command line or through its environment (never from the file).
    #[serde(skip)]
    Value(String),
}

impl Secret {
    /// Reads the secret; `Err` says which variable or file failed.
    pub fn resolve(&self) -> Result<String, String> {
        let value = match self {
            Secret::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?
            }
            Secret::File(path) => {
                refuse_world_readable(path)?;
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?
            }
            Secret::Value(v) => v.clone(),
        };
        let value = value.lines().next().unwrap_or("").trim_end().to_string();
        match value.is_empty() {
            true => Err(format!("secret from {self:?} is empty")),
            false => Ok(value),
        }
    }
}

/// A secret file readable by every user is refused (group-readable is fine: a service group).
pub(crate) fn refuse_world_readable(path: &std::path::Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(format!(
                "secret file {} is readable by every user (mode {mode:o}); run `chmod o-r` on it",
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Secret;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn world_readable_secret_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        for (mode, ok) in [(0o644, false), (0o604, false), (0o600, true), (0o640, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = Secret::File(path.clone()).resolve();
            assert_eq!(r.is_ok(), ok, "mode {mode:o}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().contains("readable by every user"));
            }
        }
    }
}
