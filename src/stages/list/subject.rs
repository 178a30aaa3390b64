//! The subject tag (`[list] `), added once.

/// The Subject value with `tag` in front, unless the subject already carries it anywhere
/// (`Re: [list] Re: ...` keeps its one tag). An empty tag changes nothing.
pub fn tagged(subject: Option<&str>, tag: &str) -> Option<String> {
    let trimmed_tag = tag.trim();
    if trimmed_tag.is_empty() {
        return None;
    }
    let subject = subject.unwrap_or_default().trim();
    if subject.contains(trimmed_tag) {
        return None;
    }
    Some(format!("{trimmed_tag} {subject}").trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::tagged;

    #[test]
    fn one_tag_only() {
        assert_eq!(tagged(Some("Hello"), "[m] ").as_deref(), Some("[m] Hello"));
        assert_eq!(tagged(Some("Re: [m] Re: Hello"), "[m] "), None);
        assert_eq!(
            tagged(Some("=?UTF-8?B?w6k=?="), "[m]").as_deref(),
            Some("[m] =?UTF-8?B?w6k=?=")
        );
        assert_eq!(tagged(None, "[m]").as_deref(), Some("[m]"));
        assert_eq!(tagged(Some("x"), ""), None);
    }
}
