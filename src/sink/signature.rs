//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): an
//! HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, sent base64
//! encoded as `v1,<signature>` in the `webhook-signature` header.
//!
//! A secret of the form `whsec_<base64>` is decoded as the spec says; any
//! other secret is used as raw bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `webhook-signature` header value for one delivery.
pub fn sign(secret: &str, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = match secret.strip_prefix("whsec_").map(|encoded| STANDARD.decode(encoded)) {
        Some(Ok(key)) => key,
        _ => secret.as_bytes().to_vec(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_changes_with_every_input() {
        let base = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1_700_000_000, b"{}");
        assert!(base.starts_with("v1,"));
        assert_ne!(
            base,
            sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", "msg_1", 1_700_000_000, b"{}")
        );
        assert_ne!(
            base,
            sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_2", 1_700_000_000, b"{}")
        );
        assert_ne!(
            base,
            sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1_700_000_001, b"{}")
        );
        assert_ne!(
            base,
            sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1_700_000_000, b"[]")
        );
    }
}
