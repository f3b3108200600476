//! `Bytes`: a byte buffer that crosses a process boundary as one byte string.

use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Vec<u8>` that travels as bytes.
///
/// serde sees a `Vec<u8>` as a sequence of numbers, so it is encoded and
/// decoded one byte at a time (a few hundred MB/s). `Bytes` is encoded as a
/// length and the bytes themselves, and decoded with one copy: use it for
/// binary payloads (images, compressed blocks, serialized blobs) in task
/// arguments and results, queue items and pipe messages, or as a field of
/// your own types. Like [`Wrapping`](std::num::Wrapping), it is a plain
/// wrapper: the vector is its public field, and it dereferences to `[u8]`.
///
/// ```
/// use mproc::Bytes;
///
/// #[mproc::task]
/// fn render(width: usize, height: usize) -> Bytes {
///     vec![0xff; width * height * 4].into()
/// }
///
/// let image = mproc::spawn!(render(640, 480))?.join()?;
/// assert_eq!(image.len(), 640 * 480 * 4);
///
/// let q = mproc::Queue::<Bytes>::new()?;
/// q.put(Bytes::from(b"a block"))?;
/// assert_eq!(&*q.get()?, b"a block");
/// # Ok::<(), mproc::Error>(())
/// ```
///
/// As a field (the same as `#[serde(with = "serde_bytes")]` on a `Vec<u8>`):
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Frame {
///     index: u64,
///     pixels: mproc::Bytes,
/// }
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// An empty buffer; allocates nothing.
    pub const fn new() -> Bytes {
        Bytes(Vec::new())
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Bytes {
        Bytes(Vec::with_capacity(capacity))
    }

    /// The vector inside, without a copy.
    ///
    /// ```
    /// let mut b = mproc::Bytes::with_capacity(8);
    /// b.extend(b"head");
    /// b.0.push(b'!');                  // the vector is the public field
    /// assert_eq!(&b[..], b"head!");    // and a `Bytes` is a `[u8]`
    /// assert_eq!(b.into_vec(), b"head!".to_vec());
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::codec::bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        crate::codec::bytes::deserialize(d).map(Bytes)
    }
}

/// The length and the first bytes, not a megabyte of numbers.
impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        write!(f, "Bytes({} bytes: b\"", self.0.len())?;
        for &b in self.0.iter().take(SHOWN) {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str(if self.0.len() > SHOWN { "\"...)" } else { "\")" })
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for Bytes {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl BorrowMut<[u8]> for Bytes {
    fn borrow_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes(v.to_vec())
    }
}

/// So that `Bytes::from(b"literal")` works.
impl<const N: usize> From<&[u8; N]> for Bytes {
    fn from(v: &[u8; N]) -> Bytes {
        Bytes(v.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.0
    }
}

impl FromIterator<u8> for Bytes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Bytes {
        Bytes(Vec::from_iter(iter))
    }
}

impl Extend<u8> for Bytes {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl<'a> Extend<&'a u8> for Bytes {
    fn extend<I: IntoIterator<Item = &'a u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Bytes {
    type Item = u8;
    type IntoIter = std::vec::IntoIter<u8>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Bytes {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq<[u8]> for Bytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<Vec<u8>> for Bytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.0 == *other
    }
}

impl std::io::Write for Bytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn the_encoding_is_the_length_then_the_raw_bytes() {
        let b: Bytes = (0..=255).collect();
        let encoded = encode(&b).unwrap();
        // bincode's varint for 256: the marker 251 then a u16.
        assert_eq!(encoded[..3], [251, 0, 1]);
        assert_eq!(encoded[3..], b[..]);
        assert_eq!(encode(&Bytes::new()).unwrap(), [0]);
        assert_eq!(encode(&Bytes::from(b"ab")).unwrap(), [2, b'a', b'b']);
    }

    #[test]
    fn it_decodes_what_it_encodes() {
        for len in [0, 1, 250, 251, 65_536, 1 << 20] {
            let b: Bytes = (0..len).map(|i| (i * 7) as u8).collect();
            assert_eq!(decode::<Bytes>(&encode(&b).unwrap()).unwrap(), b, "{len} bytes");
        }
    }

    #[test]
    fn it_is_wire_compatible_with_a_vec_of_u8() {
        // bincode writes a u8 as one byte, so the two encodings agree: a sender
        // may switch to Bytes without its receivers noticing.
        let v: Vec<u8> = (0..1000).map(|i| i as u8).collect();
        assert_eq!(encode(&Bytes::from(v.clone())).unwrap(), encode(&v).unwrap());
        assert_eq!(decode::<Bytes>(&encode(&v).unwrap()).unwrap(), v);
        assert_eq!(decode::<Vec<u8>>(&encode(&Bytes::from(v.clone())).unwrap()).unwrap(), v);
    }

    #[test]
    fn it_decodes_from_a_sequence_of_numbers_in_self_describing_formats() {
        let b = Bytes::from(b"xyz");
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "[120,121,122]");
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), b);
    }

    #[test]
    fn a_short_input_claiming_a_long_buffer_is_an_error() {
        let mut bytes = vec![253];
        bytes.extend_from_slice(&(512u64 << 20).to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(matches!(decode::<Bytes>(&bytes), Err(crate::Error::Codec(_))));
        // Within the decoder's limit, and still more than there is.
        assert!(matches!(decode::<Bytes>(&[251, 0, 1, 1, 2, 3]), Err(crate::Error::Codec(_))));
    }

    #[test]
    fn debug_shows_the_length_and_the_first_bytes() {
        assert_eq!(format!("{:?}", Bytes::from(b"hi\n")), r#"Bytes(3 bytes: b"hi\n")"#);
        let big = format!("{:?}", Bytes(vec![b'a'; 1 << 20]));
        assert_eq!(big, format!("Bytes(1048576 bytes: b\"{}\"...)", "a".repeat(32)));
    }
}
