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
