//! The wire format: the only module that knows values travel as bincode 2 (serde API).
//!
//! Everything that crosses a process boundary is encoded here, so swapping the
//! format means editing this file alone.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Largest value the decoder will believe in. Lengths inside a value are checked
/// against it before anything is allocated, so a corrupt or hostile length prefix
/// is an error rather than an attempt to reserve exabytes.
const DECODE_LIMIT: usize = 1 << 32;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `value` into a fresh buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| Error::Codec(e.to_string()))
}

/// Decodes one value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config()).map_err(|e| Error::Codec(e.to_string()))?;
    if used != bytes.len() {
        return Err(Error::Codec(format!("{} trailing bytes after the value", bytes.len() - used)));
    }
    Ok(value)
}

/// Serde helpers for an already-encoded payload inside a message: written as one
/// byte string (a length and a copy) rather than as a sequence of numbers, one
/// serializer call per byte. Use with `#[serde(with = "crate::codec::bytes")]`.
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
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Bytes)
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
    fn a_corrupt_value_is_an_error_not_a_panic() {
        assert!(decode::<Carrier>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode::<(u64, String)>(&[1, 200]).is_err());
    }
}
