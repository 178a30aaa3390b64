//! The settings a list's owner may change from the console or the admin API, written into the
//! list file in place (its comments and layout kept, through toml_edit) and checked by the same
//! loader as at start before the file is replaced. Keys, addresses, DMARC handling, trusted
//! sealers, owners and moderators stay the operator's, in the file; the moderation lists
//! (who may always post, is always held, refused or dropped) are the owner's.

use super::ConfigError;
use super::list::ListConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What an owner may set. In a change, a field left out keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerSettings {
    /// The list's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Subject tag, e.g. `[members]` (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_tag: Option<String>,
    /// The footer added to posts (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Every post waits for a moderator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderated: Option<bool>,
    /// `hold`, `reject`, `discard` or `accept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_member_action: Option<String>,
    /// `members`, `all` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_rejected: Option<String>,
    /// Mail the owners a daily report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_report: Option<bool>,
    /// Non-members whose posts are accepted (addresses or `*` patterns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_posts_from: Option<Vec<String>>,
    /// Addresses or patterns whose posts are always held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_posts_from: Option<Vec<String>>,
    /// Addresses or patterns whose posts are always refused with `reject_reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_posts_from: Option<Vec<String>>,
    /// Addresses or patterns whose posts are always dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discard_posts_from: Option<Vec<String>>,
    /// The reason a post from `reject_posts_from` is refused with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

impl OwnerSettings {
    /// The values `list` has now.
    pub fn of(list: &ListConfig, text: &str) -> Self {
        let doc = text.parse::<toml_edit::DocumentMut>().ok();
        let raw = |key: &str| {
            doc.as_ref()
                .and_then(|d| d.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        OwnerSettings {
            name: Some(list.name.clone()),
            subject_tag: Some(list.subject_tag.clone()),
            footer: Some(list.footer.clone()),
            moderated: Some(list.moderated),
            non_member_action: Some(raw("non_member_action").unwrap_or_else(|| "hold".into())),
            notify_rejected: Some(raw("notify_rejected").unwrap_or_else(|| "members".into())),
            daily_report: Some(list.daily_report),
            accept_posts_from: Some(list.accept_posts_from.clone()),
            hold_posts_from: Some(list.hold_posts_from.clone()),
            reject_posts_from: Some(list.reject_posts_from.clone()),
            discard_posts_from: Some(list.discard_posts_from.clone()),
            reject_reason: Some(list.reject_reason.clone()),
        }
    }
}

/// Applies `change` to the list file at `path` and checks the result with the loader; the file
/// is replaced only when it loads, and its address never changes. Returns the new text and
/// the list as it now loads.
pub fn apply(path: &Path, change: &OwnerSettings) -> Result<(String, ListConfig), ConfigError> {
    let fail = |why: String| ConfigError::at(path, "", None, why);
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let before = ListConfig::parse(path, &text)?;
    let mut doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| fail(e.to_string()))?;
    let strings = [
        ("name", &change.name),
        ("subject_tag", &change.subject_tag),
        ("footer", &change.footer),
        ("non_member_action", &change.non_member_action),
        ("notify_rejected", &change.notify_rejected),
        ("reject_reason", &change.reject_reason),
    ];
    for (key, value) in strings {
        if let Some(v) = value {
            doc[key] = toml_edit::value(v.as_str());
        }
    }
    for (key, value) in [
        ("moderated", change.moderated),
        ("daily_report", change.daily_report),
    ] {
        if let Some(v) = value {
            doc[key] = toml_edit::value(v);
        }
    }
    for (key, value) in [
        ("accept_posts_from", &change.accept_posts_from),
        ("hold_posts_from", &change.hold_posts_from),
        ("reject_posts_from", &change.reject_posts_from),
        ("discard_posts_from", &change.discard_posts_from),
    ] {
        if let Some(list) = value {
            let array: toml_edit::Array = list.iter().map(|a| a.trim()).collect();
            doc[key] = toml_edit::value(array);
        }
    }
    let edited = doc.to_string();
    let after = ListConfig::parse(path, &edited)?;
    if after.address != before.address {
        return Err(fail("the list's address cannot change".into()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fresh = path.with_file_name(format!(".{name}.new"));
    replace_keeping_mode(path, &fresh, &edited).map_err(|e| fail(format!("cannot write: {e}")))?;
    Ok((edited, after))
}

/// Writes `text` to `fresh`, gives it `path`'s permissions and owner, and renames it over `path`. The
/// operator chose the list file's mode (0600 when it names secrets or private addresses); a
/// save from the console must not widen it to the umask's 0644. The new file is created 0600
/// and widened only to what the old one had, so it is never more open than before, even for a
/// moment.
fn replace_keeping_mode(path: &Path, fresh: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let old = std::fs::metadata(path)?;
    let mode = old.permissions().mode() & 0o7777;
    let _ = std::fs::remove_file(fresh);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(fresh)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    // Root saving another user's file (the service's) leaves it theirs.
    let created = file.metadata()?;
    if (created.uid(), created.gid()) != (old.uid(), old.gid()) && created.uid() == 0 {
        std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    drop(file);
    std::fs::rename(fresh, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_comments_and_is_checked_before_it_is_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("team.toml");
        let original = "# the team's list\naddress = \"team@lists.test\"\nsubject_tag = \"[team]\"  # short\n\n[signing]\nselector = \"s\"\nkey = \"k.pem\"\n";
        std::fs::write(&path, original).expect("write");
        // The loader wants the key file to exist; signing is not this test's business.
        crate::base::config::write_private(&dir.path().join("k.pem"), "not read here")
            .expect("key");
        let change = OwnerSettings {
            subject_tag: Some("[crew]".into()),
            moderated: Some(true),
            ..Default::default()
        };
        let (text, after) = apply(&path, &change).expect("applied");
        assert_eq!(after.subject_tag, "[crew]");
        assert!(text.starts_with("# the team's list\n"), "{text}");
        assert!(text.contains("subject_tag = \"[crew]\""), "{text}");
        assert!(text.contains("moderated = true"), "{text}");
        assert!(text.contains("[signing]\nselector = \"s\""), "{text}");
        let bad = OwnerSettings {
            non_member_action: Some("welcome".into()),
            ..Default::default()
        };
        let err = apply(&path, &bad).expect_err("refused").to_string();
        assert!(
            err.contains("non_member_action") || err.contains("welcome"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            text,
            "unchanged after a refusal"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        apply(&path, &change).expect("applied again");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a save keeps the file's mode");
    }
}
