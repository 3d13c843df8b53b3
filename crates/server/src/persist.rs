//! The data directory: an exclusive lock so two servers never share one.
//! What lives in it (the WAL, each group's snapshot) belongs to
//! `shoal_raft`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

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
    fn lock_is_exclusive() {
        let dir = temp_dir("lock");
        let data = DataDir::open(&dir).unwrap();
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
