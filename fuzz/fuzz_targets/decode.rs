//! The pgoutput decoder on arbitrary bytes: it must never panic, and whatever
//! it accepts must encode back to exactly the bytes it read (only the
//! transactional bit of a logical message's flags is kept).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use walguard::pgoutput::{decode, encode::encode};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = decode(&Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut expected = data.to_vec();
    if expected[0] == b'M' {
        expected[1] &= 1;
    }
    assert_eq!(encode(&message).to_vec(), expected, "decoded loosely: {message:?}");
});
