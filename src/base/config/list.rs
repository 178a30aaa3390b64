//! One file per list.

use super::server::find_key;
use super::{ConfigError, valid_address};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Who is told that their post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotifyRejected {
    /// Members only: a non-member's address may be forged, and a notice to it is backscatter.
    #[default]
    Members,
    /// Everyone.
    All,
    /// Nobody.
    None,
}

/// Who may read a list's archive (`docs/archive.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveMode {
    /// Nothing is archived (default: a list's history is published only when its operator
    /// says so, and lists that ran before the archive existed stay as they were).
    #[default]
    Off,
    /// Anyone, on the `[http]` listener.
    Public,
    /// Members only; everyone else is answered 404.
    Members,
}

/// What happens to a post from someone who is not a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NonMemberAction {
    /// Keep it for a moderator (default).
    #[default]
    Hold,
    /// Refuse it at SMTP time.
    Reject,
    /// Accept and drop it silently.
    Discard,
    /// Distribute it like a member's post.
    Accept,
}

/// How the list keeps posts from DMARC p=reject/quarantine authors deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DmarcMitigation {
    /// From becomes the list, the author moves to Reply-To (default).
    #[default]
    MungeFrom,
    /// The post travels as a message/rfc822 attachment from the list.
    WrapMessage,
    /// Nothing changes (rely on ARC alone).
    None,
}

/// What happens to a post whose author's domain publishes DMARC p=reject and fails it (with
/// no trusted ARC chain vouching for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DmarcFailAction {
    /// Refuse it (default): it is most likely a forgery.
    #[default]
    Reject,
    /// Keep it for a moderator.
    Hold,
}

/// When DMARC mitigation applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MitigateWhen {
    /// For authors whose domain publishes p=reject or p=quarantine, and for `mitigate_domains`
    /// (default).
    #[default]
    Policy,
    /// For every post.
    Always,
    /// Never.
    Never,
}

/// The list's DKIM/ARC signing identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// d= for DKIM and ARC. Default: the list address's domain.
    pub domain: Option<String>,
    /// s= (required).
    pub selector: String,
    /// The private key file (PEM), relative to the list file's folder.
    pub key: PathBuf,
    /// Create the key (mode 0600) when the file is missing, and log the record to publish.
    /// Default false: a missing key is an error.
    #[serde(default)]
    pub create_key: bool,
}

impl SigningConfig {
    /// Makes `key` relative to the folder of `path` (the file it was read from, whose `text` is
    /// for error lines), and checks the key exists unless it may be created.
    pub(super) fn resolve(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        if self.key.is_relative() {
            self.key = path.parent().unwrap_or(Path::new("")).join(&self.key);
        }
        if !self.key.is_file() && !self.create_key {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "key"),
                format!(
                    "signing.key: no such file {} (make one with `arclist keygen`, or set create_key = true)",
                    self.key.display()
                ),
            ));
        }
        Ok(())
    }
}

/// One mailing list. Every field but `address` and `signing` has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// The posting address, `name@domain`.
    pub address: String,
    /// The display name ("Members"). Default: the address's local part.
    #[serde(default)]
    pub name: String,
    /// What the list is about, shown on its public page (`docs/members.md`). Default none.
    #[serde(default)]
    pub description: String,
    /// Left out of the public index of lists (its own page still answers). Default false.
    #[serde(default)]
    pub hidden: bool,
    /// Signing identity.
    pub signing: SigningConfig,
    /// Hold every post for a moderator. Default false.
    #[serde(default)]
    pub moderated: bool,
    /// What to do with non-members' posts. Default hold.
    #[serde(default)]
    pub non_member_action: NonMemberAction,
    /// DMARC mitigation. Default munge_from.
    #[serde(default)]
    pub dmarc_mitigation: DmarcMitigation,
    /// When mitigation applies. Default policy.
    #[serde(default)]
    pub mitigate: MitigateWhen,
    /// Author domains always mitigated, whatever they publish. Default none.
    #[serde(default)]
    pub mitigate_domains: Vec<String>,
    /// What to do with a post failing DMARC p=reject. Default reject.
    #[serde(default)]
    pub dmarc_fail_action: DmarcFailAction,
    /// List-Archive URL. Default none.
    #[serde(default)]
    pub archive_url: Option<String>,
    /// The list's own archive (`docs/archive.md`): `off` (default), `public` or `members`.
    #[serde(default)]
    pub archive: ArchiveMode,
    /// Ask search engines not to index the public archive (`X-Robots-Tag: noindex`).
    /// Default false.
    #[serde(default)]
    pub archive_noindex: bool,
    /// Give every member their own envelope sender (`NAME-bounces+TOKEN@`), so a bounce names
    /// the member for certain. Costs one SMTP transaction per member instead of one per
    /// domain. Default true.
    #[serde(default = "yes")]
    pub verp: bool,
    /// Sign DKIM2 (`docs/dkim2.md`): the arriving DKIM2 chain is verified, the list's changes
    /// are recorded in a Message-Instance with a Recipe, and each member's copy is signed for
    /// that member's envelope, in a transaction of its own. Default false (off until
    /// receivers verify DKIM2).
    #[serde(default)]
    pub dkim2: bool,
    /// Members named in the file, added to the store when the server starts (addresses, or
    /// `Name <address>`). They seed the store once, when the server first serves the list
    /// (and on `arclist member sync`); anyone who left since is never added back. Default none.
    #[serde(default)]
    pub members: Vec<String>,
    /// The list's owners: they receive mail sent to `NAME-owner@` and notices such as a member
    /// whose delivery was disabled by bounces. Default none (notices are only logged).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Who moderates held posts besides the owners: they get a notice per held post (approve
    /// or reject by replying) and the daily digest of what still waits. Default none.
    #[serde(default)]
    pub moderators: Vec<String>,
    /// Whose refused posts earn them a notice with the reason: `members` (default), `all`
    /// (non-members too; beware of backscatter to forged senders) or `none`.
    #[serde(default)]
    pub notify_rejected: NotifyRejected,
    /// Replies the list robot sends to one address in any hour (confirmations, help); more
    /// requests from that address are recorded and not answered. Default 5.
    #[serde(default = "five")]
    pub max_replies_per_hour: usize,
    /// Mail the owners `arclist report` for the list every day at 00:00 UTC. Default false.
    #[serde(default)]
    pub daily_report: bool,
    /// ARC sealers whose chains the list trusts (`domain` or `domain:selector`). Default none.
    #[serde(default)]
    pub trusted_sealers: Vec<String>,
    /// Posts the list takes in five minutes (Google Groups' published limit); over it, a
    /// member's post is held and anyone else's answered `452` (`docs/filtering.md`). 0: no
    /// limit. Default 300.
    #[serde(default = "default_posts_per_5min")]
    pub max_posts_per_5min: u64,
    /// Posts one sender (the From address) sends the list in an hour, handled as above. 0: no
    /// limit. Default 1800 (Google Groups' limit per sender).
    #[serde(default = "default_posts_per_sender_per_hour")]
    pub max_posts_per_sender_per_hour: u64,
    /// Lists this one is subscribed to (`[[nested_from]]`): their posts are distributed
    /// without moderation when DKIM or ARC of the parent's domain vouches for them
    /// (`docs/lists.md`). Default none.
    #[serde(default)]
    pub nested_from: Vec<NestedList>,
    /// Subject tag, such as `[members] `. Default none.
    #[serde(default)]
    pub subject_tag: String,
    /// Footer text appended to posts. Default none.
    #[serde(default)]
    pub footer: String,
    /// Where replies go (`docs/lists.md`): `poster` (default: the poster's own Reply-To is
    /// kept), `list`, or an address. With the list or an address, a Reply-To the poster set
    /// is kept beside it, so no rewrite ever loses it.
    #[serde(default = "poster")]
    pub reply_to: String,
    /// What a post the spam filter says to reject gets: `refuse` at DATA (default) or `hold`
    /// for a moderator (`docs/filtering.md`).
    #[serde(default)]
    pub spam_reject: super::SpamReject,
    /// Addresses or patterns (`*` matches any run of characters: `*@partner.example`) whose
    /// posts are accepted although they are not members. Default none.
    #[serde(default)]
    pub accept_posts_from: Vec<String>,
    /// Addresses or patterns whose posts are always held for a moderator. Default none.
    #[serde(default)]
    pub hold_posts_from: Vec<String>,
    /// Addresses or patterns whose posts are always refused, with `reject_reason`. Default
    /// none.
    #[serde(default)]
    pub reject_posts_from: Vec<String>,
    /// Addresses or patterns whose posts are always dropped without a word. Default none.
    #[serde(default)]
    pub discard_posts_from: Vec<String>,
    /// The reason given for a post from `reject_posts_from`. Default "this list does not take
    /// posts from this address".
    #[serde(default = "refused_here")]
    pub reject_reason: String,
    /// The largest post the list takes, in bytes: a bigger one is refused at the end of DATA
    /// (`552 5.3.4`, naming the limit). Default none: only the server's
    /// `[limits] max_message_size`.
    #[serde(default)]
    pub max_message_size: Option<usize>,
    /// The daily digest for members who chose one (`docs/members.md`).
    #[serde(default)]
    pub digest: DigestConfig,
    /// The file this list came from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn poster() -> String {
    "poster".into()
}

fn default_posts_per_5min() -> u64 {
    300
}

fn default_posts_per_sender_per_hour() -> u64 {
    1800
}

/// A parent list whose posts a nested list takes without moderation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NestedList {
    /// The parent's `List-Id` (RFC 2919), such as `national.example.org`, without `<>`.
    pub list_id: String,
    /// The parent's domain: a passing DKIM signature of it (or a subdomain), or a passing ARC
    /// chain whose newest seal is of it, must vouch for the post.
    pub domain: String,
}

/// A list's `[digest]` settings: when the digest goes out, and what it says above and below
/// the posts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// The hour of the day (UTC, 0 to 23) the digest goes out when posts are pending.
    /// Default 0.
    #[serde(default)]
    pub hour: u8,
    /// Send before that hour once the pending posts exceed this many KiB. Default 30.
    #[serde(default = "thirty")]
    pub size_kib: usize,
    /// Text above the table of contents. Default none.
    #[serde(default)]
    pub header: String,
    /// Text after the last post. Default none.
    #[serde(default)]
    pub footer: String,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            hour: 0,
            size_kib: thirty(),
            header: String::new(),
            footer: String::new(),
        }
    }
}

fn refused_here() -> String {
    "this list does not take posts from this address".into()
}

fn thirty() -> usize {
    30
}

impl ListConfig {
    /// The address's domain.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The address's local part.
    pub fn local_part(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// Everyone who moderates: the owners, then the moderators, without repeats.
    pub fn all_moderators(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for a in self.owners.iter().chain(&self.moderators) {
            if !all.iter().any(|b| b.eq_ignore_ascii_case(a)) {
                all.push(a.to_ascii_lowercase());
            }
        }
        all
    }

    /// The name shown in From rewrites, List-Id and notices: `name`, or the local part when
    /// the list has none.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            self.local_part()
        } else {
            &self.name
        }
    }

    /// The signing domain.
    pub fn signing_domain(&self) -> &str {
        self.signing
            .domain
            .as_deref()
            .unwrap_or_else(|| self.domain())
    }

    pub(super) fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut list: ListConfig =
            toml::from_str(text).map_err(|e| ConfigError::at(path, text, e.span(), e.message()))?;
        if !valid_address(&list.address) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "address"),
                format!("address: {:?} is not a valid list address", list.address),
            ));
        }
        list.address = list.address.to_ascii_lowercase();
        if list.name.is_empty() {
            list.name = list.local_part().to_string();
        }
        if list.signing.selector.is_empty() {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "selector"),
                "signing.selector must not be empty",
            ));
        }
        if let Some(bad) = list.owners.iter().find(|o| !valid_address(o)) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "owners"),
                format!("owners: {bad:?} is not an address"),
            ));
        }
        for (key, value, limit) in [
            ("name", &list.name, MAX_NAME),
            ("subject_tag", &list.subject_tag, MAX_SUBJECT_TAG),
            ("footer", &list.footer, MAX_FOOTER),
            ("description", &list.description, MAX_FOOTER),
            ("header", &list.digest.header, MAX_FOOTER),
            ("footer", &list.digest.footer, MAX_FOOTER),
            ("reject_reason", &list.reject_reason, MAX_NAME),
        ] {
            let multiline = !matches!(key, "name" | "subject_tag" | "reject_reason");
            if let Err(why) = check_text(value, limit, multiline) {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, key),
                    format!("{key}: {why}"),
                ));
            }
        }
        check_nested(&mut list, path, text)?;
        check_reply_to(&mut list, path, text)?;
        for (key, patterns) in [
            ("accept_posts_from", &list.accept_posts_from),
            ("hold_posts_from", &list.hold_posts_from),
            ("reject_posts_from", &list.reject_posts_from),
            ("discard_posts_from", &list.discard_posts_from),
        ] {
            let bad = |p: &&String| {
                p.trim().is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control())
            };
            if let Some(p) = patterns.iter().find(bad) {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, key),
                    format!("{key}: {p:?} is not an address or a pattern of one"),
                ));
            }
        }
        if list.digest.hour > 23 {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "hour"),
                format!(
                    "digest.hour: {} is not an hour of the day (0 to 23)",
                    list.digest.hour
                ),
            ));
        }
        list.signing.resolve(path, text)?;
        for m in &list.members {
            if !valid_address(&super::member_address(m)) {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, "members"),
                    format!("members: {m:?} is not an address"),
                ));
            }
        }
        list.file = path.to_path_buf();
        Ok(list)
    }
}

/// Normalises each `[[nested_from]]` entry (List-Id without `<>`, lower case) and refuses
/// one without a List-Id or a domain.
fn check_nested(list: &mut ListConfig, path: &Path, text: &str) -> Result<(), ConfigError> {
    for parent in &mut list.nested_from {
        let id = parent
            .list_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        parent.list_id = id.to_ascii_lowercase();
        parent.domain = parent
            .domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if parent.list_id.is_empty()
            || parent.domain.is_empty()
            || !parent.domain.contains('.')
            || parent.list_id.contains(char::is_whitespace)
        {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "nested_from"),
                "nested_from: each entry needs a list_id (such as \"national.example.org\") and the parent's domain",
            ));
        }
    }
    Ok(())
}

/// Lower-cases `reply_to` and refuses one that is neither a policy nor an address.
fn check_reply_to(list: &mut ListConfig, path: &Path, text: &str) -> Result<(), ConfigError> {
    list.reply_to = list.reply_to.trim().to_ascii_lowercase();
    if matches!(list.reply_to.as_str(), "poster" | "list") || valid_address(&list.reply_to) {
        return Ok(());
    }
    Err(ConfigError::at(
        path,
        text,
        find_key(text, "reply_to"),
        format!(
            "reply_to: {:?} is not \"poster\", \"list\" or an address",
            list.reply_to
        ),
    ))
}

/// Loads every `*.toml` in `dir`, in name order; two lists with one address are an error.
pub(super) fn load_dir(dir: &Path) -> Result<Vec<ListConfig>, ConfigError> {
    super::load_unique(dir, "lists", ListConfig::parse, "address", |l| {
        (l.address.as_str(), l.file.as_path())
    })
}

/// The longest list name, in characters: it goes into From, List-Id and every notice.
pub const MAX_NAME: usize = 100;
/// The longest subject tag, in characters: it goes into every post's Subject.
pub const MAX_SUBJECT_TAG: usize = 40;
/// The longest footer, in bytes: it goes into every copy of every post.
pub const MAX_FOOTER: usize = 8 * 1024;

/// Why a name, tag or footer may not stand in what the list writes.
#[derive(Debug, thiserror::Error)]
enum TextError {
    /// Over the limit.
    #[error("{size} {unit}, more than the {limit} allowed")]
    TooLong {
        size: usize,
        unit: &'static str,
        limit: usize,
    },
    /// A control character or one that breaks or reorders lines.
    #[error("U+{code:04X} is not allowed here (no control characters{rule})")]
    Forbidden { code: u32, rule: &'static str },
}

/// Whether `value` may stand in a field or footer the list writes: at most `limit` (characters,
/// bytes for a footer), no control characters (a CR or LF in a name or tag would end the
/// Subject of every notice and add fields of its own), and nothing a reader's client takes for
/// a line break or uses to reorder text (U+2028, U+2029, bidi overrides). A footer may have line
/// breaks (LF or CR LF) and tabs, never a lone CR.
fn check_text(value: &str, limit: usize, multiline: bool) -> Result<(), TextError> {
    let size = if multiline {
        value.len()
    } else {
        value.chars().count()
    };
    if size > limit {
        let unit = if multiline { "bytes" } else { "characters" };
        return Err(TextError::TooLong { size, unit, limit });
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = match c {
            '\n' | '\t' => multiline,
            '\r' => multiline && chars.peek() == Some(&'\n'),
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => false,
            c => !c.is_control(),
        };
        if !allowed {
            return Err(TextError::Forbidden {
                code: c as u32,
                rule: if multiline {
                    "; lines end with LF"
                } else {
                    ", one line"
                },
            });
        }
    }
    Ok(())
}

fn five() -> usize {
    5
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_footers_carry_no_line_breaks_of_their_own() {
        assert!(check_text("Club news", MAX_NAME, false).is_ok());
        assert!(check_text("[club] ", MAX_SUBJECT_TAG, false).is_ok());
        assert!(check_text("--\r\nUnsubscribe:\tsee below\n", MAX_FOOTER, true).is_ok());
        for bad in [
            "a\r\nBcc: x@y",
            "a\nb",
            "a\rb",
            "a\u{0}",
            "a\u{7f}",
            "a\u{2028}b",
            "\u{202e}gnp",
        ] {
            assert!(check_text(bad, MAX_NAME, false).is_err(), "{bad:?}");
        }
        for bad in ["a\rb", "a\r", "a\u{1b}[31m", "a\u{2029}"] {
            assert!(check_text(bad, MAX_FOOTER, true).is_err(), "{bad:?}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        let err = check_text(&long, MAX_NAME, false).expect_err("too long");
        assert!(err.to_string().contains("101 characters"), "{err}");
        assert!(check_text(&"é".repeat(MAX_NAME), MAX_NAME, false).is_ok());
    }
}
