//! A message's bytes while they arrive: in memory up to [`SPILL_AT`], then in a file of their
//! own, so a session that stalls halfway through a 25 MB message holds a file, not 25 MB of
//! memory. The file is removed when the message is taken or dropped.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes kept in memory before the rest goes to a file.
pub const SPILL_AT: usize = 1 << 20;

/// Distinguishes the files of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The bytes of one message so far.
pub struct Body {
    dir: PathBuf,
    memory: Vec<u8>,
    file: Option<(std::fs::File, PathBuf)>,
    len: usize,
}

impl Body {
    /// An empty body whose overflow goes to `dir`.
    pub fn new(dir: &Path) -> Self {
        Body {
            dir: dir.to_path_buf(),
            memory: Vec::new(),
            file: None,
            len: 0,
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

    /// Appends `bytes`, moving everything to a file once the total passes [`SPILL_AT`].
    pub fn extend(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.len += bytes.len();
        if let Some((file, _)) = &mut self.file {
            return file.write_all(bytes);
        }
        if self.memory.len() + bytes.len() <= SPILL_AT {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{}-{n}.part", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_in_memory_large_ones_spill_and_come_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut small = Body::new(dir.path());
        small.extend(b"hello").expect("extend");
        assert_eq!(small.take().expect("take"), b"hello");
        let mut big = Body::new(dir.path());
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
        let mut dropped = Body::new(dir.path());
        dropped.extend(&vec![0u8; SPILL_AT + 1]).expect("extend");
        drop(dropped);
        assert_eq!(files(), 0, "a dropped body leaves nothing");
    }
}
