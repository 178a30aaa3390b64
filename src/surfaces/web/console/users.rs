//! The console's people: a file of `name:argon2-hash:lists` lines, where lists is `*` (an
//! operator, every list) or the posting addresses a list owner or moderator may see. Written by
//! `arclist console-user`; passwords are only ever kept as Argon2id hashes (PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::path::{Path, PathBuf};

/// One person who may log in.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The Argon2id hash of the password (PHC string).
    pub hash: String,
    /// `None`: every list; else the posting addresses (lower-cased) they may see.
    pub lists: Option<Vec<String>>,
}

impl User {
    /// Whether they may see and moderate `list`.
    pub fn may_see(&self, list: &str) -> bool {
        match &self.lists {
            None => true,
            Some(lists) => lists.iter().any(|l| l.eq_ignore_ascii_case(list)),
        }
    }

    /// Whether `password` is theirs.
    pub fn check(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash).is_ok_and(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }

    fn line(&self) -> String {
        let lists = match &self.lists {
            None => "*".to_string(),
            Some(l) => l.join(","),
        };
        format!("{}:{}:{lists}", self.name, self.hash)
    }
}

/// Why the console's users could not be read, written or hashed, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The system gave no random bytes for a salt.
    #[error("no randomness for a salt")]
    Randomness,
    /// Argon2 could not hash (or encode the salt).
    #[error("{0}")]
    Hash(argon2::password_hash::Error),
    /// A line is not `name:hash:lists`.
    #[error("{}:{line}: expected name:hash:lists", file.display())]
    Malformed {
        /// The users file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// A line without a name or with something that is not an Argon2 hash.
    #[error("{}:{line}: a name and an Argon2 hash are needed", file.display())]
    NoHash {
        /// The users file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// The users file could not be read or replaced.
    #[error("console users file {}: {source}", file.display())]
    File {
        /// The users file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The new users file could not be written.
    #[error(transparent)]
    Write(#[from] crate::base::config::PrivateFileError),
}

/// The Argon2id hash of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, UsersError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| UsersError::Randomness)?;
    let salt = SaltString::encode_b64(&salt).map_err(UsersError::Hash)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(UsersError::Hash)
}

/// Parses a users file; errors name the file and line.
pub fn parse(path: &Path, text: &str) -> Result<Vec<User>, UsersError> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = n + 1;
        let mut parts = line.splitn(3, ':');
        let (Some(name), Some(hash), Some(lists)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(UsersError::Malformed {
                file: path.to_path_buf(),
                line: line_no,
            });
        };
        // The PHC string holds `$` but never `:`, so splitting on `:` is safe.
        if name.is_empty() || PasswordHash::new(hash).is_err() {
            return Err(UsersError::NoHash {
                file: path.to_path_buf(),
                line: line_no,
            });
        }
        let lists = match lists.trim() {
            "*" => None,
            l => Some(
                l.split(',')
                    .map(|a| a.trim().to_ascii_lowercase())
                    .filter(|a| !a.is_empty())
                    .collect(),
            ),
        };
        users.push(User {
            name: name.to_string(),
            hash: hash.to_string(),
            lists,
        });
    }
    Ok(users)
}

/// Reads the users file at `path`.
pub fn load(path: &Path) -> Result<Vec<User>, UsersError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsersError::File {
        file: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Adds `user` to the file at `path`, or replaces the line of the same name; the file is
/// written mode 0600.
pub fn put(path: &Path, user: &User) -> Result<(), UsersError> {
    let mut users = match path.exists() {
        true => load(path)?,
        false => Vec::new(),
    };
    users.retain(|u| u.name != user.name);
    users.push(user.clone());
    let text: String = users.iter().map(|u| u.line() + "\n").collect();
    // A new 0600 file renamed over the old one: never a half-written users file.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "console.users".into());
    let fresh = path.with_file_name(format!(".{name}.new"));
    let _ = std::fs::remove_file(&fresh);
    crate::base::config::write_private(&fresh, &text)?;
    std::fs::rename(&fresh, path).map_err(|source| UsersError::File {
        file: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_check_and_lists_scope() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let text = format!("# people\nann:{h}:*\nbob:{h}:Members@lists.test, other@lists.test\n");
        let users = parse(Path::new("console.users"), &text).expect("parses");
        assert!(users[0].check("correct horse"));
        assert!(!users[0].check("wrong"));
        assert!(users[0].may_see("any@lists.test"));
        assert!(users[1].may_see("members@lists.test"));
        assert!(!users[1].may_see("secret@lists.test"));
        let err = parse(Path::new("console.users"), "carl:nothash:*\n").expect_err("bad");
        assert!(err.to_string().starts_with("console.users:1:"), "{err}");
    }
}
