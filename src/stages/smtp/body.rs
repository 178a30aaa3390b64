//! A message's bytes while they arrive: in memory up to [`SPILL_AT`], then in a file of their
//! own, so a session that stalls halfway through a 25 MB message holds a file, not 25 MB of
//! memory. The file is removed when the message is taken or dropped. All files together hold
//! at most the [`Spill`] quota (`[limits] incoming_quota`): stalled transfers cannot fill the
//! disk the spool lives on.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes kept in memory before the rest goes to a file.
pub const SPILL_AT: usize = 1 << 20;

/// Distinguishes the files of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Where bodies spill, and the bytes their files may hold together.
#[derive(Clone)]
pub struct Spill {
    dir: PathBuf,
    quota: Arc<Quota>,
}

struct Quota {
    limit: u64,
    used: AtomicU64,
}

impl Spill {
    /// Files go to `dir`, `limit` bytes of them at most at any time.
    pub fn new(dir: PathBuf, limit: u64) -> Self {
        Spill {
            dir,
            quota: Arc::new(Quota {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// The folder of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the files hold now.
    pub fn used(&self) -> u64 {
        self.quota.used.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes of the quota; false (and nothing taken) when they do not fit.
    fn reserve(&self, n: u64) -> bool {
        let q = &self.quota;
        q.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= q.limit)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        let _ = self
            .quota
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

/// Why a body could not take more bytes.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The files of all transfers would pass the quota.
    #[error("the files of messages in transfer would pass incoming_quota ({limit} bytes)")]
    Quota {
        /// The quota.
        limit: u64,
    },
    /// The file could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The bytes of one message so far.
pub struct Body {
    spill: Spill,
    memory: Vec<u8>,
    file: Option<(std::fs::File, PathBuf)>,
    len: usize,
    /// Bytes of the quota this body's file holds.
    reserved: u64,
}

impl Body {
    /// An empty body whose overflow goes to `spill`.
    pub fn new(spill: &Spill) -> Self {
        Body {
            spill: spill.clone(),
            memory: Vec::new(),
            file: None,
            len: 0,
            reserved: 0,
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes`, moving everything to a file once the total passes [`SPILL_AT`]. Over
    /// the quota nothing is added.
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), SpillError> {
        let spilled = self.file.is_some() || self.memory.len() + bytes.len() > SPILL_AT;
        if spilled {
            let n = (bytes.len()
                + if self.file.is_some() {
                    0
                } else {
                    self.memory.len()
                }) as u64;
            if !self.spill.reserve(n) {
                return Err(SpillError::Quota {
                    limit: self.spill.quota.limit,
                });
            }
            self.reserved += n;
        }
        self.len += bytes.len();
        if let Some((file, _)) = &mut self.file {
            return Ok(file.write_all(bytes)?);
        }
        if !spilled {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        let dir = self.spill.dir.clone();
        std::fs::create_dir_all(&dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.part", std::process::id()));
        // A message in transfer is nobody's to read but the server's.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&self.memory)?;
        file.write_all(bytes)?;
        self.memory = Vec::new();
        self.file = Some((file, path));
        Ok(())
    }

    /// The whole message, leaving the body empty (and its file removed).
    pub fn take(&mut self) -> std::io::Result<Vec<u8>> {
        let len = std::mem::take(&mut self.len);
        self.spill.release(std::mem::take(&mut self.reserved));
        match self.file.take() {
            None => Ok(std::mem::take(&mut self.memory)),
            Some((mut file, path)) => {
                let mut all = Vec::with_capacity(len);
                let read = file
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| file.read_to_end(&mut all));
                let _ = std::fs::remove_file(&path);
                read.map(|_| all)
            }
        }
    }

    /// Removes every file a process left in `dir` (a crash mid-transfer): nothing in them was
    /// acknowledged, so nothing is lost.
    pub fn clean(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some((_, path)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
        self.spill.release(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_in_memory_large_ones_spill_and_come_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = Spill::new(dir.path().to_path_buf(), u64::MAX);
        let mut small = Body::new(&spill);
        small.extend(b"hello").expect("extend");
        assert_eq!(small.take().expect("take"), b"hello");
        let mut big = Body::new(&spill);
        let chunk = vec![b'x'; 300_000];
        for _ in 0..5 {
            big.extend(&chunk).expect("extend");
        }
        assert_eq!(big.len(), 1_500_000);
        let files = || std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(files(), 1, "spilled to one file");
        let all = big.take().expect("take");
        assert_eq!(all.len(), 1_500_000);
        assert!(all.iter().all(|b| *b == b'x'));
        assert_eq!(files(), 0, "and the file is gone");
        let mut dropped = Body::new(&spill);
        dropped.extend(&vec![0u8; SPILL_AT + 1]).expect("extend");
        drop(dropped);
        assert_eq!(files(), 0, "a dropped body leaves nothing");
        assert_eq!(spill.used(), 0, "and holds no quota");
    }

    #[test]
    fn the_files_of_all_bodies_stay_within_the_quota() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spill = Spill::new(dir.path().to_path_buf(), 3 * SPILL_AT as u64);
        let chunk = vec![b'x'; SPILL_AT / 2];
        let mut first = Body::new(&spill);
        for _ in 0..4 {
            first.extend(&chunk).expect("within the quota");
        }
        assert_eq!(spill.used(), 2 * SPILL_AT as u64);
        let mut second = Body::new(&spill);
        for _ in 0..2 {
            second.extend(&chunk).expect("in memory, not counted");
        }
        assert!(matches!(
            second.extend(&vec![b'x'; SPILL_AT]),
            Err(SpillError::Quota { .. })
        ));
        assert_eq!(
            second.len(),
            SPILL_AT,
            "nothing of the refused bytes was kept"
        );
        drop(second);
        assert_eq!(first.take().expect("take").len(), 2 * SPILL_AT);
        assert_eq!(spill.used(), 0, "taken bodies give their share back");
        let mut third = Body::new(&spill);
        third.extend(&vec![b'x'; 2 * SPILL_AT]).expect("room again");
        assert_eq!(spill.used(), 2 * SPILL_AT as u64);
    }
}
