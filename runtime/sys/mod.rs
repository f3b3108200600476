//! Thin, safe wrappers over the system calls the crate needs, one file per family.
//!
//! Nothing outside this folder calls `libc` directly for these families, so every
//! `unsafe` block that touches a descriptor or a process lives here with its
//! `// SAFETY:` argument.

pub(crate) mod fd;
pub(crate) mod frame;
pub(crate) mod futex;
pub(crate) mod pid;
pub(crate) mod random;
pub(crate) mod shm;
pub(crate) mod sock;
