//! Secrets are named, not written: `{ env = "NAME" }` or `{ file = "/path" }`.

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
            Secret::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?,
            Secret::Value(v) => v.clone(),
        };
        let value = value.lines().next().unwrap_or("").trim_end().to_string();
        match value.is_empty() {
            true => Err(format!("secret from {self:?} is empty")),
            false => Ok(value),
        }
    }
}
