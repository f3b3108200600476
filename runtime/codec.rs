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
