//! Configuration: one server file and one file per list under the lists folder.
//!
//! Every field has a default (documented on the field and in `docs/configuration.md`); an
//! unknown key, a bad address or a missing key file stops startup with an error naming the
//! file, the line and the field.

mod cidr;
mod filter;
mod forward;
mod list;
mod list_settings;
pub mod owner;
mod private_file;
mod server;

pub use cidr::{CidrError, Cidrs};
pub use filter::{FilterConfig, FilterOnError, SpamReject};
pub use forward::{Alias, AliasEntry, AliasPolicy, ForwardConfig, SrsConfig};
pub use list::{
    ArchiveMode, DigestConfig, DmarcFailAction, DmarcMitigation, ListConfig, MitigateWhen,
    NestedList, NonMemberAction, NotifyRejected, SigningConfig,
};
pub use list_settings::{OwnerSettings, apply as apply_owner_settings};
pub use private_file::{PrivateFileError, write_private};
pub use server::{
    AdminConfig, ClusterConfig, DEFAULT_MIN_BODY_RATE, DeliveryConfig, DnsConfig, HttpConfig,
    Limits, LogFormat, PipelineConfig, RetentionConfig, ServerConfig, SmarthostTls, TlsConfig,
    ViewerConfig, without_password,
};

use std::path::{Path, PathBuf};

/// Every `*.toml` in `dir` (the `what` folder, for errors), parsed by `parse` in name order.
/// Two files whose `field` has the same value (`identity` gives it, and the file) are an error
/// naming both files.
fn load_unique<T>(
    dir: &Path,
    what: &str,
    parse: impl Fn(&Path, &str) -> Result<T, ConfigError>,
    field: &str,
    identity: impl Fn(&T) -> (&str, &Path),
) -> Result<Vec<T>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::at(dir, "", None, format!("cannot read the {what} folder: {e}"))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut out: Vec<T> = Vec::new();
    for path in paths {
        let text = read_bounded(&path)
            .map_err(|e| ConfigError::at(&path, "", None, format!("cannot read: {e}")))?;
        let item = parse(&path, &text)?;
        let (id, _) = identity(&item);
        if let Some((_, other)) = out.iter().map(&identity).find(|(o, _)| *o == id) {
            return Err(ConfigError::at(
                &path,
                &text,
                server::find_key(&text, field),
                format!("{field} {id} is also used by {}", other.display()),
            ));
        }
        out.push(item);
    }
    Ok(out)
}

/// Largest configuration file read: a list file with a long `members` array fits many times.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The text of a configuration file, refusing one over [`MAX_FILE_BYTES`] (a link to
/// `/dev/zero` must not eat the machine's memory) or not in UTF-8.
fn read_bounded(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            mib: MAX_FILE_BYTES >> 20,
        });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// Why a configuration or secret file could not be read (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file system refused: missing, no permission, a read error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Over the size any configuration file may have.
    #[error("larger than {mib} MiB")]
    TooLarge {
        /// The limit, in MiB.
        mib: u64,
    },
    /// Bytes that are not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// Why the admin bearer token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("admin token file {}: {source}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// The first line is shorter than a token must be.
    #[error("admin token file {}: the token must be at least 16 characters", path.display())]
    TooShort {
        /// The token file.
        path: PathBuf,
    },
}

/// A configuration problem an operator can fix: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn at(
        file: &Path,
        text: &str,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let line = span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        ConfigError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// The whole configuration: the server and its lists.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server file's settings.
    pub server: ServerConfig,
    /// Every list, by posting address.
    pub lists: Vec<ListConfig>,
    /// Every forwarding domain.
    pub forwards: Vec<ForwardConfig>,
}

impl Config {
    /// Loads `path` (or the built-in defaults when `None`) and every `*.toml` in its lists folder.
    /// Relative paths in the files resolve against the server file's folder (the current folder
    /// for built-in defaults).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let server = match path {
            Some(p) => ServerConfig::load(p)?,
            None => ServerConfig::default().resolved(&PathBuf::new()),
        };
        owner::note_state_dir(&server.state_dir);
        Config::with_server(server)
    }

    /// The configuration of `server` (already loaded) with its list and forwarding files read
    /// anew: what a reload applies.
    pub fn with_server(server: ServerConfig) -> Result<Self, ConfigError> {
        // A forwarding service runs no lists: with forwarding files, a lists folder that does
        // not exist means no lists, not an error.
        let lists = if server.forwards_dir.is_some() && !server.lists_dir.exists() {
            Vec::new()
        } else {
            list::load_dir(&server.lists_dir)?
        };
        let forwards = match &server.forwards_dir {
            Some(dir) => forward::load_dir(dir)?,
            None => Vec::new(),
        };
        if let Some(clash) = forwards.iter().find(|f| {
            lists
                .iter()
                .any(|l| l.domain().eq_ignore_ascii_case(&f.domain))
        }) {
            return Err(ConfigError::at(
                &clash.file,
                "",
                None,
                format!(
                    "domain {} is also a list domain; give forwarding its own domain",
                    clash.domain
                ),
            ));
        }
        Ok(Config {
            server,
            lists,
            forwards,
        })
    }

    /// The list whose posting address is `address` (case-insensitive).
    pub fn list(&self, address: &str) -> Option<&ListConfig> {
        self.lists
            .iter()
            .find(|l| l.address.eq_ignore_ascii_case(address))
    }
}

/// The admin bearer token: the first line of `path`, 16 characters at least.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let text = read_bounded(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.len() < 16 {
        return Err(TokenError::TooShort {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

/// The address in a `members` entry: `a@b` or `Name <a@b>`.
pub fn member_address(entry: &str) -> String {
    match (entry.rfind('<'), entry.rfind('>')) {
        (Some(l), Some(r)) if l < r => entry[l + 1..r].trim().to_ascii_lowercase(),
        _ => entry.trim().to_ascii_lowercase(),
    }
}

/// The display name in a `members` entry (empty for a bare address).
pub fn member_name(entry: &str) -> String {
    entry
        .rfind('<')
        .map(|l| clean_member_name(entry[..l].trim().trim_matches('"')))
        .unwrap_or_default()
}

/// A member's display name as it is stored, wherever it came from (a form, the admin API, an
/// import line, a joining message's From): trimmed, without control characters (a NUL or a
/// line break has no place in a name, and PostgreSQL's JSON functions refuse a NUL), at most
/// 100 characters.
pub fn clean_member_name(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The mailbox an address reaches, as per-address limits count it (the list robot's replies, the
/// SRS return budget): the `+tag` of the local part
/// dropped (`victim+1@` and `victim+2@` are one mailbox, RFC 5233 sub-addressing), the domain
/// without a trailing dot, and both lower-cased.
///
/// The local part is case-folded although RFC 5321 lets a server tell `Ann@` from `ann@`:
/// almost no server does, and for a limit folding errs on the safe side (two spellings share
/// one budget; never does one mailbox get several). Only `+` is taken as the tag separator:
/// `-` (qmail's) is also common inside plain names (`john-smith@`), and provider rules such as
/// Gmail's ignored dots are not guessed at.
pub fn mailbox_key(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    format!("{base}@{}", domain.trim_end_matches('.')).to_ascii_lowercase()
}

/// Checks that `s` looks like `local@domain` with nothing that could smuggle SMTP syntax.
pub fn valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && s.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '\\' | '(' | ')')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_members_name_keeps_no_control_characters_and_at_most_100_characters() {
        assert_eq!(
            super::member_name("\"Ann\u{0} Lee\r\n\" <ann@x.test>"),
            "Ann Lee"
        );
        assert_eq!(super::clean_member_name(" Bo\tb "), "Bob");
        assert_eq!(
            super::clean_member_name(&"é".repeat(150)).chars().count(),
            100
        );
        assert_eq!(super::member_name("ann@x.test"), "");
    }
}
