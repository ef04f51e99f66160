//! Firmware signatures: Ed25519 over the SHA-512 digest of the image, the scheme embassy-boot's
//! `verify_and_mark_updated` checks on the RP2040 and the ESP32-C3 app checks the same way.
//!
//! Why this split: signing happens offline, on a machine that holds the private key
//! (`gridsentry firmware keygen` / `sign`, or `openssl genpkey -algorithm ed25519`); the daemon
//! and the devices hold only the 32-byte public key, so a stolen gateway cannot sign an image.
//! Keys are PKCS#8 PEM files, the format OpenSSL writes. ring does the cryptography (already
//! here for TLS).

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// Why a key or signature is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not a PKCS#8 PEM Ed25519 private key ({1})")]
    Key(String, String),
    #[error("public key: 64 lowercase hex characters expected")]
    PublicKey,
    #[error("signature: 128 lowercase hex characters expected")]
    Signature,
    #[error("the signature does not match the image and the public key")]
    Mismatch,
}

/// The digest that is signed.
pub fn digest(image: &[u8]) -> [u8; 64] {
    let d = ring::digest::digest(&ring::digest::SHA512, image);
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of the image, lowercase hex (the transfer check in the offer).
pub fn sha256_hex(image: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, image))
}

/// A signing key read from a PEM file.
pub struct Signer(Ed25519KeyPair);

impl Signer {
    /// Reads `path` (PKCS#8 PEM, v1 as OpenSSL writes it or v2).
    pub fn from_file(path: &std::path::Path) -> Result<Signer, SignError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SignError::Io(name.clone(), e))?;
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| SignError::Key(name.clone(), e.to_string()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| SignError::Key(name, e.to_string()))?;
        Ok(Signer(pair))
    }

    /// The public key, lowercase hex (what the daemon's `[ota] public_key` and the firmware's
    /// `GRIDSENTRY_OTA_PUBLIC_KEY` hold).
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.public_key().as_ref())
    }

    /// The signature of `image`, lowercase hex.
    pub fn sign(&self, image: &[u8]) -> String {
        hex::encode(self.0.sign(&digest(image)).as_ref())
    }
}

/// A new key as PEM text, and its public key in hex.
pub fn generate() -> Result<(String, String), SignError> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|e| SignError::Key("new key".into(), e.to_string()))?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|e| SignError::Key("new key".into(), e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok((pem, hex::encode(pair.public_key().as_ref())))
}

/// Checks `sig_hex` over `image` with `public_hex`.
pub fn verify(public_hex: &str, image: &[u8], sig_hex: &str) -> Result<(), SignError> {
    let pk: [u8; 32] = gridsentry_sensors::ota::unhex(public_hex.trim()).ok_or(SignError::PublicKey)?;
    let sig: [u8; 64] = gridsentry_sensors::ota::unhex(sig_hex.trim()).ok_or(SignError::Signature)?;
    UnparsedPublicKey::new(&ED25519, pk).verify(&digest(image), &sig).map_err(|_| SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_image_verifies_and_any_change_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, public) = generate().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, pem).unwrap();
        let s = Signer::from_file(&path).unwrap();
        assert_eq!(s.public_hex(), public);
        let image = b"firmware image bytes".to_vec();
        let sig = s.sign(&image);
        verify(&public, &image, &sig).unwrap();
        let mut other = image.clone();
        other[3] ^= 1;
        assert!(matches!(verify(&public, &other, &sig), Err(SignError::Mismatch)));
        let (_, stranger) = generate().unwrap();
        assert!(matches!(verify(&stranger, &image, &sig), Err(SignError::Mismatch)));
        assert!(matches!(verify("zz", &image, &sig), Err(SignError::PublicKey)));
    }

    /// RFC 8032 §7.1 test 1's key (seed 9d61…, public d75a…), as OpenSSL writes it (PKCS#8 v1):
    /// the key file format people will bring.
    #[test]
    fn reads_an_openssl_key() {
        let dir = tempfile::tempdir().unwrap();
        let der = hex::decode("302e020100300506032b657004220420")
            .unwrap()
            .into_iter()
            .chain(hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap());
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.collect::<Vec<u8>>())
        );
        let path = dir.path().join("openssl.pem");
        std::fs::write(&path, pem).unwrap();
        let s = Signer::from_file(&path).unwrap();
        assert_eq!(s.public_hex(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    }
}
