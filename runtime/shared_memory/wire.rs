//! A [`SharedMemory`] as a task argument: its descriptor (through the side
//! table of `handle.rs`) and its name.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SharedMemory;

/// A segment is a handle: it can be a task argument under every start method.
/// The descriptor travels (so it works even after the name was unlinked),
/// with the name; the other process maps the same file, as an opener.
impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Wire(Descriptor(self.inner.file.as_fd()), &self.inner.name).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<SharedMemory, D::Error> {
        use serde::de::Error as _;
        let Received(ReceivedFd(fd), name) = Received::deserialize(d)?;
        SharedMemory::attach(name, File::from(fd)).map_err(D::Error::custom)
    }
}

#[derive(Serialize)]
struct Wire<'a>(Descriptor<'a>, &'a str);

struct Descriptor<'a>(BorrowedFd<'a>);

impl Serialize for Descriptor<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::handle::serialize_fd(self.0, "SharedMemory", s)
    }
}

struct ReceivedFd(OwnedFd);

impl<'de> Deserialize<'de> for ReceivedFd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<ReceivedFd, D::Error> {
        crate::handle::deserialize_fd(d).map(ReceivedFd)
    }
}

#[derive(Deserialize)]
struct Received(ReceivedFd, String);
