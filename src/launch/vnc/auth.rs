//! VNC authentication (RFB's security type 2): the server sends 16 random bytes, the client
//! returns them DES-encrypted with the password as key. Weak (8 characters, DES), as in every
//! VNC server; libvirt's `passwd` asks for exactly this.

use des::cipher::{BlockEncrypt, KeyInit};

/// The DES key for `password`: its first 8 bytes, zero-padded, each byte's bits mirrored
/// (VNC's historical quirk).
pub fn key(password: &str) -> [u8; 8] {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.bytes()) {
        *k = b.reverse_bits();
    }
    key
}

/// What a client that knows the password answers to `challenge`.
pub fn response(key: &[u8; 8], challenge: &[u8; 16]) -> [u8; 16] {
    let cipher = des::Des::new(key.into());
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}

/// 16 unpredictable bytes from the kernel.
pub fn challenge() -> std::io::Result<[u8; 16]> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes)
}

/// Compares without an early exit, so timing says nothing about how much matched.
pub fn matches(expected: &[u8; 16], got: &[u8; 16]) -> bool {
    expected
        .iter()
        .zip(got)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_mirrors_bits_and_pads() {
        assert_eq!(key("a"), [0x86, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(key("123456789")[7], b'8'.reverse_bits());
    }

    #[test]
    fn a_known_des_vector_encrypts() {
        // FIPS 81's classic vector: key 0123456789ABCDEF, "Now is t" → 3FA40E8A984D4815.
        let key = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        let mut challenge = [0u8; 16];
        challenge[..8].copy_from_slice(b"Now is t");
        challenge[8..].copy_from_slice(b"Now is t");
        let out = response(&key, &challenge);
        assert_eq!(out[..8], [0x3f, 0xa4, 0x0e, 0x8a, 0x98, 0x4d, 0x48, 0x15]);
        assert_eq!(out[..8], out[8..]);
        assert!(matches(&out, &out) && !matches(&out, &challenge));
    }
}
