//! The image signature: Ed25519 over the SHA-512 of the image's bytes, checked over what is in
//! the slot's flash (never over what came over the air), with salty as embassy-boot does on
//! the RP2040 — the same check `gridsentry firmware sign` signs for.

use super::VerifyError;
use embedded_storage::nor_flash::ReadNorFlash;

/// Checks `sig` over the first `size` bytes of `flash` against `public_key` (none: refused).
pub fn verify<F: ReadNorFlash>(
    flash: &mut F,
    size: u32,
    sig: &[u8; 64],
    public_key: Option<&[u8; 32]>,
) -> Result<(), VerifyError> {
    let key = public_key.ok_or(VerifyError::Signature)?;
    let key = salty::PublicKey::try_from(key).map_err(|_| VerifyError::Signature)?;
    let mut digest = salty::Sha512::new();
    let mut buf = [0u8; 256];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u32) as usize;
        // Reads keep the flash's alignment; the bytes past `size` are not hashed.
        let read = n.next_multiple_of(F::READ_SIZE).min(buf.len());
        flash.read(at, &mut buf[..read]).map_err(|_| VerifyError::Flash)?;
        digest.update(&buf[..n]);
        at += n as u32;
    }
    let message = digest.finalize();
    key.verify(&message, &salty::Signature::from(sig)).map_err(|_| VerifyError::Signature)
}
