//! The canonical encoding: one version byte, then bincode 2 with fixed-width little-endian
//! integers.
//!
//! Decoding is the gate every byte from outside passes through, so it is bounded in three
//! ways before anything large is allocated: the caller's size limit is checked against the
//! whole buffer first; bincode runs with a hard byte limit ([`MAX_MESSAGE_BYTES`]); and
//! sequence pre-allocation goes through serde's cautious size hint, so a length prefix that
//! lies costs at most a small bounded allocation before the decoder runs out of input.
//! Trailing bytes are an error: every value has exactly one encoding.

use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

/// The version byte that starts every encoded message.
pub const ENCODING_VERSION: u8 = 1;

/// Absolute upper bound on any encoded message, whatever the genesis says.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_MESSAGE_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_MESSAGE_BYTES>()
}

/// Why bytes could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer is larger than allowed for this kind of message.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// Limit for this message kind.
        max: usize,
    },
    /// The buffer is empty.
    #[error("empty message")]
    Empty,
    /// The version byte is not one this node speaks.
    #[error("unsupported encoding version {0} (this node speaks {ENCODING_VERSION})")]
    Version(u8),
    /// The body is not a valid encoding of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// Encodes `value` canonically (version byte + bincode).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![ENCODING_VERSION];
    // Encoding into a Vec cannot fail for our types except by exceeding the hard limit,
    // which no value built by this node reaches; an empty body then fails to decode anywhere.
    if let Ok(body) = bincode::serde::encode_to_vec(value, config()) {
        out.extend_from_slice(&body);
    }
    out
}

/// The encoded size of `value` in bytes.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut counter = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut counter, config()) {
        Ok(()) => counter.bytes_written + 1,
        Err(_) => usize::MAX,
    }
}

/// Decodes a value from `bytes`, refusing buffers over `max_len` bytes before looking inside.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    let max = max_len.min(MAX_MESSAGE_BYTES);
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != ENCODING_VERSION {
        return Err(DecodeError::Version(version));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(DecodeError::Trailing(body.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        v: Vec<i32>,
        s: String,
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u64>(), v in proptest::collection::vec(any::<i32>(), 0..200), s in ".{0,20}") {
            let x = Sample { a, v, s };
            let bytes = encode(&x);
            prop_assert_eq!(encoded_len(&x), bytes.len());
            prop_assert_eq!(decode::<Sample>(&bytes, 1 << 20), Ok(x));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Sample>(&bytes, 1 << 20);
        }
    }

    #[test]
    fn limits_and_errors() {
        let x = Sample { a: 1, v: vec![1, 2, 3], s: "hi".into() };
        let bytes = encode(&x);
        assert!(matches!(decode::<Sample>(&bytes, 4), Err(DecodeError::TooLarge { .. })));
        assert_eq!(decode::<Sample>(&[], 100), Err(DecodeError::Empty));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(decode::<Sample>(&wrong, 100), Err(DecodeError::Version(9)));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode::<Sample>(&trailing, 100), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn lying_length_prefix_is_rejected_without_huge_allocation() {
        // version, a = 0, then a vector claiming 2^60 elements followed by nothing.
        let mut bytes = vec![ENCODING_VERSION];
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(decode::<Sample>(&bytes, 100), Err(DecodeError::Malformed(_))));
    }
}
