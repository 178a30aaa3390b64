//! Who owns the files arclist creates. The service runs as its own user (`arclist` with the
//! Debian package), but an operator often runs the command line as root: a store, key or
//! users file that root creates would then be root's, and the service could not read it.
//! So, once the command line has turned it on ([`follow_state_folder`]), a file this process
//! creates as root takes the owner and group of the state folder (`state_dir`, which the
//! service owns), when that folder belongs to another user. Run as the service user, nothing
//! changes hands: its files are its own already.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process hands what it creates to the state folder's owner (the command line
/// turns it on; a server embedded in another program, or a test, keeps its files).
static FOLLOW: AtomicBool = AtomicBool::new(false);

/// The state folder's owner and group, when they are another user's.
static OWNER: Mutex<Option<(u32, u32)>> = Mutex::new(None);

/// From now on, files this process creates as root go to the owner of the state folder of
/// the server file loaded (see the module's words).
pub fn follow_state_folder() {
    FOLLOW.store(true, Ordering::Relaxed);
}

/// Notes the owner of `state_dir` (called when a server file is loaded): a folder owned by
/// root, or none yet, gives nothing to follow.
pub(super) fn note_state_dir(state_dir: &Path) {
    if !FOLLOW.load(Ordering::Relaxed) {
        return;
    }
    let owner = std::fs::metadata(state_dir)
        .ok()
        .filter(|m| m.uid() != 0)
        .map(|m| (m.uid(), m.gid()));
    if let Ok(mut slot) = OWNER.lock() {
        *slot = owner;
    }
}

/// Notes the owner of `dir`, or of the nearest folder above it that exists, for a command
/// run with no server file (`arclist keygen --dir`): a key made as root in a folder the
/// service owns goes to the service, as when the state folder is known.
pub fn note_folder(dir: &Path) {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(existing) = absolute.ancestors().find(|d| d.is_dir()) {
        note_state_dir(existing);
    }
}

/// Gives `path`, which this process has just created, to the state folder's owner when this
/// process runs as root and that folder is another user's; else leaves it as it is.
pub fn adopt(path: &Path) -> std::io::Result<()> {
    let Some((uid, gid)) = OWNER.lock().ok().and_then(|o| *o) else {
        return Ok(());
    };
    // A file we created is ours: owned by root means we run as root.
    if std::fs::symlink_metadata(path)?.uid() != 0 {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot give {} to the state folder's owner (uid {uid}): {e}",
                path.display()
            ),
        )
    })
}

/// Creates `dir` and the folders above it that are missing with `mode` (0750: the service
/// and its group), each one given to the state folder's owner as [`adopt`] says.
pub fn create_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir(parent, mode)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => adopt(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whose access `check-config` checks: the service user's when root runs it beside a state
/// folder that user owns (root can read anything; the service cannot), else this process's.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// This process, by trying.
    Process,
    /// The service user and its group, by the mode bits (supplementary groups aside).
    Service {
        /// Its user id.
        uid: u32,
        /// Its group id.
        gid: u32,
    },
}

/// Read, write, search: the mode bits of one class.
const READ: u32 = 4;
const WRITE: u32 = 2;
const SEARCH: u32 = 1;

impl Actor {
    /// The service user when root runs beside its state folder (see [`follow_state_folder`]),
    /// else this process.
    pub fn current() -> Actor {
        match OWNER.lock().ok().and_then(|o| *o) {
            Some((uid, gid)) if running_as_root() => Actor::Service { uid, gid },
            _ => Actor::Process,
        }
    }

    /// Who this is, as a problem names them.
    pub fn name(&self) -> String {
        match self {
            Actor::Process => "this user".to_string(),
            Actor::Service { uid, .. } => format!("the service user (uid {uid})"),
        }
    }

    /// Whether the file `path` can be read; else why not.
    pub fn can_read(&self, path: &Path) -> Result<(), String> {
        match self {
            Actor::Process => std::fs::File::open(path)
                .map(drop)
                .map_err(|e| format!("cannot be read by {}: {e}", self.name())),
            Actor::Service { .. } => self.allowed(path, READ),
        }
    }

    /// Whether the file `path` can be read and written; else why not.
    pub fn can_read_write(&self, path: &Path) -> Result<(), String> {
        match self {
            Actor::Process => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map(drop)
                .map_err(|e| format!("cannot be written by {}: {e}", self.name())),
            Actor::Service { .. } => self.allowed(path, READ | WRITE),
        }
    }

    /// Whether files can be made in the folder `dir`, or, when it does not exist yet, in the
    /// nearest folder above it that does (arclist creates the rest); else why not.
    pub fn can_create_in(&self, dir: &Path) -> Result<(), String> {
        let mut existing = dir;
        while !existing.exists() {
            match existing.parent() {
                Some(p) if !p.as_os_str().is_empty() => existing = p,
                _ => return Ok(()),
            }
        }
        match self {
            Actor::Process => {
                let probe = existing.join(format!(".arclist-check-{}", std::process::id()));
                let made = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&probe);
                let _ = std::fs::remove_file(&probe);
                made.map(drop).map_err(|e| {
                    format!(
                        "{}: cannot be written by {}: {e}",
                        existing.display(),
                        self.name()
                    )
                })
            }
            Actor::Service { .. } => self
                .allowed(existing, WRITE | SEARCH)
                .map_err(|e| format!("{}: {e}", existing.display())),
        }
    }

    /// Whether the service user may do `bits` to `path` and search every folder above it.
    fn allowed(&self, path: &Path, bits: u32) -> Result<(), String> {
        let Actor::Service { uid, gid } = *self else {
            return Ok(());
        };
        let may = |m: &std::fs::Metadata, bits: u32| {
            let mode = m.mode();
            let class = if m.uid() == uid {
                mode >> 6
            } else if m.gid() == gid {
                mode >> 3
            } else {
                mode
            };
            class & bits == bits
        };
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        for folder in absolute.ancestors().skip(1) {
            if let Ok(m) = std::fs::metadata(folder)
                && !may(&m, SEARCH)
            {
                return Err(format!(
                    "{} cannot reach it: {} is closed to it (mode {:o})",
                    self.name(),
                    folder.display(),
                    m.mode() & 0o7777
                ));
            }
        }
        match may(&meta, bits) {
            true => Ok(()),
            false => Err(format!(
                "{} may not {} it (owner uid {}, mode {:o})",
                self.name(),
                if bits & WRITE != 0 { "write" } else { "read" },
                meta.uid(),
                meta.mode() & 0o7777
            )),
        }
    }
}
