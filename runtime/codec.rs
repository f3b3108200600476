//! The wire format: the only module that knows values travel as bincode 2 (serde API).
//!
//! Everything that crosses a process boundary is encoded here, so swapping the
//! format means editing this file alone.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// How much memory a decoded value may claim, per encoded byte. Lengths inside
/// a value are checked against `DECODE_FACTOR × input length` (in steps, at
/// least 1 MiB) before anything is allocated, so a small corrupt or hostile
/// message cannot make the decoder reserve gigabytes. Real values stay far
/// below it: a `Vec<u64>` of small numbers claims 8 bytes per encoded byte, a
/// `Vec<String>` of empty strings 24.
const DECODE_FACTOR: usize = 256;

/// The encoder's limit: none worth speaking of (what we encode, we own).
const ENCODE_LIMIT: usize = 1 << 40;

/// Encodes `value` into a fresh buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let config = bincode::config::standard().with_limit::<ENCODE_LIMIT>();
    bincode::serde::encode_to_vec(value, config).map_err(|e| Error::Codec(e.to_string()))
}

/// Decodes one value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let claim = bytes.len().saturating_mul(DECODE_FACTOR);
    let (value, used) = match claim {
        0..=0x10_0000 => decode_within::<T, 0x10_0000>(bytes),
        0x10_0001..=0x100_0000 => decode_within::<T, 0x100_0000>(bytes),
        0x100_0001..=0x1000_0000 => decode_within::<T, 0x1000_0000>(bytes),
        0x1000_0001..=0x1_0000_0000 => decode_within::<T, 0x1_0000_0000>(bytes),
        0x1_0000_0001..=0x10_0000_0000 => decode_within::<T, 0x10_0000_0000>(bytes),
        _ => decode_within::<T, 0x100_0000_0000>(bytes),
    }?;
    if used != bytes.len() {
        return Err(Error::Codec(format!("{} trailing bytes after the value", bytes.len() - used)));
    }
    Ok(value)
}

fn decode_within<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<(T, usize)> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    bincode::serde::decode_from_slice(bytes, config).map_err(|e| Error::Codec(e.to_string()))
}

/// Serde helpers for a byte buffer inside a message: written as one byte string
/// (a length and a copy) rather than as a sequence of numbers, one serializer
/// call per byte. Use with `#[serde(with = "crate::codec::bytes")]`; the public
/// face is [`crate::Bytes`].
pub(crate) mod bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::ser::Serializer;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            // Formats without byte strings (JSON) write a sequence of numbers.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                // The hint is the sender's word: trust it only so far.
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(v)
            }
        }
        // `deserialize_bytes`, not `deserialize_byte_buf`: from a slice, bincode
        // then checks that the bytes are there and lends them (`visit_bytes`
        // makes the one copy, of the exact size), where `deserialize_byte_buf`
        // would zero a buffer of the claimed length before reading into it. A
        // decoder that owns its input still hands over a `Vec` (`visit_byte_buf`).
        d.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Carrier {
        #[serde(with = "bytes")]
        payload: Vec<u8>,
    }

    #[test]
    fn byte_payloads_round_trip_as_byte_strings() {
        let c = Carrier { payload: (0..=255).collect() };
        let encoded = encode(&c).unwrap();
        // A length prefix of at most 3 bytes, then the bytes themselves.
        assert!(encoded.len() <= 256 + 3);
        assert_eq!(decode::<Carrier>(&encoded).unwrap(), c);
    }

    #[test]
    fn a_short_input_claiming_a_huge_length_is_refused() {
        // A string length of 2^31 - 1 in bincode's varint form, and no string after it.
        let mut bytes = vec![252];
        bytes.extend_from_slice(&(i32::MAX as u32).to_le_bytes());
        assert!(matches!(decode::<String>(&bytes), Err(Error::Codec(_))));
        assert!(matches!(decode::<Vec<u64>>(&bytes), Err(Error::Codec(_))));
    }

    #[test]
    fn values_that_claim_more_memory_than_their_bytes_still_decode() {
        let many_empty: Vec<String> = vec![String::new(); 100_000];
        assert_eq!(decode::<Vec<String>>(&encode(&many_empty).unwrap()).unwrap(), many_empty);
        let small_numbers: Vec<u64> = (0..100_000).map(|i| i % 100).collect();
        assert_eq!(decode::<Vec<u64>>(&encode(&small_numbers).unwrap()).unwrap(), small_numbers);
    }

    #[test]
    fn a_corrupt_value_is_an_error_not_a_panic() {
        assert!(decode::<Carrier>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode::<(u64, String)>(&[1, 200]).is_err());
    }
}
