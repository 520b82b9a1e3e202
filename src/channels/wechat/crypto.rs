//! WeChat's signatures and its "safe mode" message encryption, as its server API documents
//! them (the same scheme as Tencent's `WXBizMsgCrypt` samples):
//!
//! - `signature` = hex SHA-1 of the token, `timestamp` and `nonce`, sorted and concatenated;
//!   `msg_signature` adds the `Encrypt` text to the sorted strings.
//! - The AES key is the Base64 of the 43-character EncodingAESKey plus `=` (32 bytes); the IV
//!   is its first 16 bytes. The plaintext is 16 random bytes, the message's length (4 bytes,
//!   big-endian), the message and the app id, padded PKCS#7-style to a multiple of **32**
//!   bytes, then encrypted with AES-256-CBC (no further padding) and Base64-encoded.
//!
//! SHA-1, AES, CBC, PKCS#7 and Base64 come from their crates (`sha1`, `aes` + `cbc`,
//! `cbc::cipher::block_padding`, `base64`); comparisons of signatures are constant-time.

use aes::cipher::block_padding::{NoPadding, Pkcs7, RawPadding};
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// WeChat pads to multiples of 32 bytes (not AES's 16).
const PAD_BLOCK: usize = 32;

/// Length of an EncodingAESKey.
pub use crate::config::ENCODING_AES_KEY_LEN;

/// Why an encrypted message could not be read. Never carries the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the EncodingAESKey must be 43 Base64 characters")]
    Key,
    #[error("the encrypted text is not Base64")]
    Base64,
    #[error("the encrypted text is not whole AES blocks or its padding is wrong")]
    Cipher,
    #[error("the decrypted text is malformed")]
    Malformed,
    #[error("the message is for another app id")]
    AppId,
}

/// The hex SHA-1 of `parts` sorted and concatenated (WeChat's `signature`/`msg_signature`).
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut sha = Sha1::new();
    for p in sorted {
        sha.update(p.as_bytes());
    }
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` is the signature of `parts` (constant-time; case-insensitive hex).
pub fn verify(given: &str, parts: &[&str]) -> bool {
    let expected = signature(parts);
    let given = given.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The AES key of one account's EncodingAESKey.
#[derive(Clone)]
pub struct MessageCrypto {
    key: [u8; 32],
    app_id: String,
}

impl std::fmt::Debug for MessageCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageCrypto")
            .field("key", &"<redacted>")
            .field("app_id", &self.app_id)
            .finish()
    }
}

impl MessageCrypto {
    pub fn new(encoding_aes_key: &str, app_id: &str) -> Result<MessageCrypto, CryptoError> {
        Ok(MessageCrypto {
            key: decode_key(encoding_aes_key)?,
            app_id: app_id.to_string(),
        })
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// Decrypts an `Encrypt` text and checks that it is addressed to our app id.
    pub fn decrypt(&self, encrypted: &str) -> Result<String, CryptoError> {
        let data = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::Base64)?;
        if data.is_empty() || data.len() % PAD_BLOCK != 0 {
            return Err(CryptoError::Cipher);
        }
        let plain = Decryptor::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&data)
            .map_err(|_| CryptoError::Cipher)?;
        // PKCS#7 over the last 32-byte block: 1..=32 bytes of padding
        let last = plain.len() - PAD_BLOCK;
        let kept = Pkcs7::raw_unpad(&plain[last..])
            .map_err(|_| CryptoError::Cipher)?
            .len();
        let plain = &plain[..last + kept];
        if plain.len() < 20 {
            return Err(CryptoError::Malformed);
        }
        let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(CryptoError::Malformed);
        }
        let (msg, app_id) = rest.split_at(len);
        if !bool::from(app_id.ct_eq(self.app_id.as_bytes())) {
            return Err(CryptoError::AppId);
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::Malformed)
    }

    /// Encrypts `msg` for a reply, with 16 random bytes in front.
    pub fn encrypt(&self, msg: &str) -> String {
        use rand::RngCore;
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        self.encrypt_with(random, msg)
    }

    fn encrypt_with(&self, random: [u8; 16], msg: &str) -> String {
        let mut plain = Vec::with_capacity(20 + msg.len() + self.app_id.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        // a reply is far below 4 GiB
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.app_id.as_bytes());
        let pos = plain.len() % PAD_BLOCK;
        let mut block = [0u8; PAD_BLOCK];
        block[..pos].copy_from_slice(&plain[plain.len() - pos..]);
        Pkcs7::raw_pad(&mut block, pos);
        plain.truncate(plain.len() - pos);
        plain.extend_from_slice(&block);
        let data = Encryptor::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        STANDARD.encode(data)
    }
}

/// The 32-byte AES key of a 43-character EncodingAESKey (the format is checked by the
/// configuration too, so it lives there).
pub fn decode_key(encoding_aes_key: &str) -> Result<[u8; 32], CryptoError> {
    crate::config::decode_encoding_aes_key(encoding_aes_key).ok_or(CryptoError::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent's published sample (WXBizMsgCrypt, "Sample.cs"/the WeCom callback docs): the
    // same algorithm as the Official Account's safe mode.
    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const APP_ID: &str = "wx5823bf96d3bd56c7";
    const TIMESTAMP: &str = "1409659813";
    const NONCE: &str = "1372623149";
    const MSG_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
    const ENCRYPTED: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

    #[test]
    fn tencents_published_sample_verifies_and_decrypts() {
        assert!(verify(MSG_SIGNATURE, &[TOKEN, TIMESTAMP, NONCE, ENCRYPTED]));
        assert!(!verify(MSG_SIGNATURE, &[TOKEN, TIMESTAMP, "1", ENCRYPTED]));
        let crypto = MessageCrypto::new(KEY, APP_ID).unwrap();
        let xml = crypto.decrypt(ENCRYPTED).unwrap();
        assert!(xml.starts_with("<xml>"), "{xml}");
        assert!(
            xml.contains("<Content><![CDATA[hello]]></Content>"),
            "{xml}"
        );
        // the same text for another app id is refused
        let other = MessageCrypto::new(KEY, "wx0000000000000000").unwrap();
        assert_eq!(other.decrypt(ENCRYPTED), Err(CryptoError::AppId));
    }

    #[test]
    fn encryption_round_trips_with_32_byte_padding() {
        let crypto = MessageCrypto::new(KEY, APP_ID).unwrap();
        for msg in ["", "a", "中文消息", &"长".repeat(1000), &"x".repeat(12)] {
            let enc = crypto.encrypt(msg);
            let raw = STANDARD.decode(&enc).unwrap();
            assert_eq!(raw.len() % 32, 0);
            assert_eq!(crypto.decrypt(&enc).unwrap(), msg);
        }
        // a plaintext of exactly 32·k bytes gets a whole block of padding (32 × 0x20)
        let msg = "y".repeat(64 - 20 - APP_ID.len());
        let enc = crypto.encrypt_with([7; 16], &msg);
        let raw = STANDARD.decode(&enc).unwrap();
        assert_eq!(raw.len(), 96);
        let plain = Decryptor::new(&crypto.key.into(), &crypto.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&raw)
            .unwrap();
        assert!(plain[64..].iter().all(|&b| b == 32));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let crypto = MessageCrypto::new(KEY, APP_ID).unwrap();
        assert_eq!(crypto.decrypt("not base64!"), Err(CryptoError::Base64));
        assert_eq!(crypto.decrypt(""), Err(CryptoError::Cipher));
        assert_eq!(
            crypto.decrypt(&STANDARD.encode([1u8; 48])),
            Err(CryptoError::Cipher)
        );
        // whole blocks that decrypt to nonsense: bad padding or a bad length
        for n in 1..6 {
            let e = crypto.decrypt(&STANDARD.encode(vec![n; 32 * n as usize]));
            assert!(e.is_err());
        }
        assert_eq!(
            MessageCrypto::new("short", APP_ID).unwrap_err(),
            CryptoError::Key
        );
        assert_eq!(
            MessageCrypto::new(&"!".repeat(43), APP_ID).unwrap_err(),
            CryptoError::Key
        );
    }

    #[test]
    fn signature_sorts_its_parts() {
        // sha1("123abctoken"), computed with sha1sum
        assert_eq!(
            signature(&["token", "abc", "123"]),
            "84501b652458690801074dc0b44e9822dfb63245"
        );
        assert_eq!(
            signature(&["token", "abc", "123"]),
            signature(&["123", "abc", "token"])
        );
        assert!(verify(
            &signature(&["t", "1", "2"]).to_uppercase(),
            &["2", "t", "1"]
        ));
        assert!(!verify("", &["t", "1", "2"]));
    }
}
