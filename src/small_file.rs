//! Reading the small files the connector is pointed at: the configuration, the API key
//! file, CA bundles, TLS certificates and keys, state files.
//!
//! Each is read whole into memory, so each is read through [`read`], which takes only
//! a regular file and at most a given number of bytes. A FIFO would otherwise block
//! start-up until something wrote to it, and `/dev/zero` (or any device) would be read
//! until memory ran out. The file is opened without blocking and checked after it is
//! open, so swapping a FIFO in between a check and the open changes nothing. This
//! module does not know what the files mean; callers name the setting in their errors.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// The limit for text files: the configuration, the API key file, a state file, a
/// private key (1 MiB; each is a few hundred bytes to a few KiB).
pub const TEXT_LIMIT: u64 = 1024 * 1024;

/// The limit for certificate bundles (16 MiB; a full system CA bundle is about 200 KiB).
pub const PEM_LIMIT: u64 = 16 * 1024 * 1024;

/// Why a small file was not read.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A directory, FIFO, socket or device.
    #[error("not a regular file (it is a {kind}); give the path of a regular file")]
    NotRegular {
        /// What it is instead.
        kind: &'static str,
    },
    /// More bytes than the caller's limit.
    #[error("larger than {limit} bytes, more than such a file ever holds; check the path")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

impl SmallFileError {
    /// The I/O error kind, when the failure was one (e.g. `NotFound`).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            SmallFileError::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// Reads the regular file at `path` (a symbolic link to one is fine), refusing any
/// other kind of file and any file of more than `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, SmallFileError> {
    let file = open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(SmallFileError::NotRegular {
            kind: kind(&meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(SmallFileError::TooLarge { limit });
    }
    // The file can still grow while it is read: read one byte past the limit to tell.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(SmallFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text; invalid UTF-8 is an `InvalidData` I/O error.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, SmallFileError> {
    String::from_utf8(read(path, limit)?).map_err(|e| {
        SmallFileError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not valid utf-8 at byte {}", e.utf8_error().valid_up_to()),
        ))
    })
}

#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so that opening a FIFO without a writer returns at once; it is
    // refused right after. A regular file reads the same either way.
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

#[cfg(unix)]
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn kind(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "twelve bytes").unwrap();
        assert_eq!(read(&path, 12).unwrap(), b"twelve bytes");
        assert_eq!(read_to_string(&path, 100).unwrap(), "twelve bytes");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read(&link, 12).unwrap(), b"twelve bytes");
        assert!(matches!(
            read(&path, 11),
            Err(SmallFileError::TooLarge { limit: 11 })
        ));
        let missing = read(&dir.path().join("missing"), 1).unwrap_err();
        assert_eq!(missing.io_kind(), Some(std::io::ErrorKind::NotFound));
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for (path, kind) in [
            (Path::new("/dev/zero"), "character device"),
            (fifo.as_path(), "fifo"),
            (dir.path(), "directory"),
        ] {
            let err = read(path, TEXT_LIMIT).unwrap_err();
            assert!(
                matches!(err, SmallFileError::NotRegular { kind: k } if k == kind),
                "{}: {err}",
                path.display()
            );
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }
}
