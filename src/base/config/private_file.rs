//! Secret files (private keys, SRS secrets): created new, readable by their owner only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a secret file could not be written, naming the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// Its folder could not be created.
    #[error("cannot create {}: {source}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be created (it exists: keys are never overwritten; or no permission).
    #[error("cannot create {} (an existing key is never overwritten): {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing or syncing the new file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes a new private key file readable by its owner only (given to the service user as
/// [`super::owner::adopt`] says); never overwrites one.
pub fn write_private(path: &Path, pem: &str) -> Result<(), PrivateFileError> {
    if let Some(dir) = path.parent() {
        super::owner::create_dir(dir, 0o750).map_err(|source| PrivateFileError::Folder {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| PrivateFileError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .and_then(|()| super::owner::adopt(path))
        .map_err(|source| PrivateFileError::Write {
            path: path.to_path_buf(),
            source,
        })
}
