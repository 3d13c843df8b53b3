//! The data directory: an exclusive lock so two servers never share one, and
//! the snapshot written on clean shutdown and read at start.
//!
//! The snapshot is replaced atomically: written to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced so the rename itself
//! survives a crash. A crash mid-save leaves the previous snapshot intact.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const SNAPSHOT: &str = "dump.shoal";
const SNAPSHOT_TMP: &str = "dump.shoal.tmp";
const LOCK: &str = "LOCK";

/// An opened, locked data directory. The lock is held for as long as this
/// value lives (the kernel drops it with the file descriptor).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data directory {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("data directory {0} is in use by another shoal process")]
    Locked(PathBuf),
}

impl DataDir {
    /// Creates the directory if needed, checks it is writable, and locks it.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let err = |e| DataDirError::Io(path.to_path_buf(), e);
        fs::create_dir_all(path).map_err(err)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(path.join(LOCK)).map_err(err)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                DataDirError::Locked(path.to_path_buf())
            } else {
                err(e)
            });
        }
        Ok(DataDir { path: path.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last saved snapshot, if there is one.
    pub fn load_snapshot(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path.join(SNAPSHOT)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Atomically replaces the snapshot with `bytes`.
    pub fn save_snapshot(&self, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.path.join(SNAPSHOT_TMP);
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.path.join(SNAPSHOT))?;
        File::open(&self.path)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shoal-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn save_then_load_and_lock_is_exclusive() {
        let dir = temp_dir("roundtrip");
        let data = DataDir::open(&dir).unwrap();
        assert_eq!(data.load_snapshot().unwrap(), None);
        data.save_snapshot(b"one").unwrap();
        data.save_snapshot(b"two").unwrap();
        assert_eq!(data.load_snapshot().unwrap().as_deref(), Some(&b"two"[..]));
        assert!(!dir.join(SNAPSHOT_TMP).exists());
        assert!(matches!(DataDir::open(&dir), Err(DataDirError::Locked(_))));
        drop(data);
        assert!(DataDir::open(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let path = temp_dir("file");
        fs::write(&path, b"x").unwrap();
        assert!(matches!(DataDir::open(&path), Err(DataDirError::Io(..))));
        fs::remove_file(&path).unwrap();
    }
}
