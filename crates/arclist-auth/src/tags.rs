//! DKIM tag-lists (RFC 6376 §3.2), shared by DKIM-Signature, ARC-Seal, ARC-Message-Signature
//! and key records.

/// A parsed tag-list: names and values in the order written, values with surrounding
/// whitespace removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList {
    tags: Vec<(String, String)>,
}

/// Why a tag-list is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// `;;` or a leading `;`.
    #[error("empty tag-spec (\";;\")")]
    EmptyTag,
    /// A tag-spec with no `=`.
    #[error("tag-spec without '=': {0:?}")]
    MissingEquals(String),
    /// A tag name that is not ALPHA *(ALPHA / DIGIT / "_").
    #[error("invalid tag name {0:?}")]
    BadName(String),
    /// The same tag twice.
    #[error("duplicate tag {0:?}")]
    Duplicate(String),
}

impl TagList {
    /// Parses `input` strictly: names are case-sensitive, duplicates and empty tag-specs are
    /// errors, a trailing `;` is allowed.
    pub fn parse(input: &str) -> Result<Self, TagError> {
        let mut tags: Vec<(String, String)> = Vec::new();
        let specs: Vec<&str> = input.split(';').collect();
        let last = specs.len() - 1;
        for (i, spec) in specs.iter().enumerate() {
            if spec.trim_matches(is_fws).is_empty() {
                if i == last && i > 0 {
                    break;
                }
                return Err(TagError::EmptyTag);
            }
            let (name, value) = spec
                .split_once('=')
                .ok_or_else(|| TagError::MissingEquals(spec.trim().to_string()))?;
            let name = name.trim_matches(is_fws);
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(TagError::BadName(name.to_string()));
            }
            if tags.iter().any(|(n, _)| n == name) {
                return Err(TagError::Duplicate(name.to_string()));
            }
            tags.push((name.to_string(), value.trim_matches(is_fws).to_string()));
        }
        Ok(TagList { tags })
    }

    /// The value of tag `name` (case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All tags in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

fn is_fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Removes all folding whitespace, as base64 tag values (`b=`, `bh=`, `p=`) require.
pub fn strip_fws(value: &str) -> String {
    value.chars().filter(|c| !is_fws(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let t = TagList::parse(" v=1; a = rsa-sha256 ;\r\n b=ab c;").expect("valid");
        assert_eq!(t.get("a"), Some("rsa-sha256"));
        assert_eq!(t.get("b"), Some("ab c"));
        assert_eq!(t.get("A"), None);
        assert_eq!(TagList::parse("a=1;;b=2"), Err(TagError::EmptyTag));
        assert_eq!(
            TagList::parse("a=1; a=2"),
            Err(TagError::Duplicate("a".into()))
        );
        assert!(TagList::parse("1a=1").is_err());
        assert!(TagList::parse("a").is_err());
    }
}
