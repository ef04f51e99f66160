//! PostgreSQL connection strings as libpq takes them, TLS included.
//!
//! rust-postgres knows `sslmode=disable|prefer|require` and no `sslrootcert`; a city's security
//! review asks for `sslmode=verify-full` (the server's certificate checked against the CA and
//! its name). Both are taken out of the string here and become a rustls connector that trusts
//! `sslrootcert` and checks the host name (rustls always does); the rest goes to
//! rust-postgres with `sslmode=require`. `verify-ca` (no name check) is refused, not weakened.

use super::StoreError;
use std::sync::Arc;

/// A parsed connection string and how to connect.
pub struct PgConnect {
    /// rust-postgres's part.
    pub config: postgres::Config,
    /// `Some` with `sslmode=verify-full`.
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl PgConnect {
    /// Reads `url` (`key=value ...` or `postgresql://...?...`).
    pub fn parse(url: &str) -> Result<PgConnect, StoreError> {
        let (rest, mode, root) = take_tls(url);
        let config: postgres::Config = rest.parse()?;
        let tls = match mode.as_deref() {
            None | Some("disable" | "prefer" | "require") => None,
            Some("verify-full") => {
                let root = root.ok_or_else(|| {
                    StoreError::Schema("sslmode=verify-full needs sslrootcert=/path/to/ca.pem".into())
                })?;
                Some(connector(&root)?)
            }
            Some(other) => {
                return Err(StoreError::Schema(format!(
                    "sslmode={other} is not supported: use verify-full (with sslrootcert) or require"
                )))
            }
        };
        Ok(PgConnect { config, tls })
    }

    /// Connects (blocking).
    pub fn connect(&self) -> Result<postgres::Client, StoreError> {
        Ok(match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(postgres::NoTls)?,
        })
    }
}

/// Splits `sslmode` and `sslrootcert` off a connection string: (the rest with `sslmode=require`
/// when one was given, sslmode, sslrootcert).
fn take_tls(url: &str) -> (String, Option<String>, Option<String>) {
    // A URL's settings are its query (`&`-separated), a libpq string's its words.
    let (base, settings, sep) = match url.split_once('?').filter(|_| url.contains("://")) {
        Some((base, query)) => (Some(base), query.split('&').collect::<Vec<_>>(), "&"),
        None => (None, url.split_whitespace().collect(), " "),
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for setting in settings {
        match setting.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(v.to_string()),
            _ => kept.push(setting),
        }
    }
    if mode.is_some() {
        kept.push("sslmode=require");
    }
    let rest = match base {
        Some(base) if kept.is_empty() => base.to_string(),
        Some(base) => format!("{base}?{}", kept.join(sep)),
        None => kept.join(sep),
    };
    (rest, mode, root)
}

fn connector(root: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad = |e: String| StoreError::Schema(format!("sslrootcert {root}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).map_err(|e| bad(e.to_string()))? {
        roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::take_tls;

    #[test]
    fn tls_settings_are_taken_out_of_both_forms() {
        let (rest, mode, root) =
            take_tls("host=db user=gs sslmode=verify-full sslrootcert=/etc/ca.pem dbname=x");
        assert_eq!(rest, "host=db user=gs dbname=x sslmode=require");
        assert_eq!((mode.as_deref(), root.as_deref()), (Some("verify-full"), Some("/etc/ca.pem")));
        let (rest, mode, root) =
            take_tls("postgresql://gs@db/x?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5");
        assert_eq!(rest, "postgresql://gs@db/x?connect_timeout=5&sslmode=require");
        assert_eq!((mode.as_deref(), root.as_deref()), (Some("verify-full"), Some("/ca.pem")));
        assert_eq!(take_tls("host=db").0, "host=db");
    }
}
