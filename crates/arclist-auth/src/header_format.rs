//! Writing tag-list header fields (DKIM-Signature, ARC-Seal, ARC-Message-Signature).

/// How tags are laid out in a field we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagLayout {
    /// Tags in the order given, folded between tags so no line passes 78 columns where avoidable.
    Folded,
    /// Tags in alphabetical order, one line, `; ` between: the open ARC test suite's layout,
    /// under which its expected signatures reproduce.
    SuiteCompatible,
}

/// Renders `Name: t1=v1; t2=v2` with CRLF.
pub fn format_field(name: &str, tags: &[(&str, String)], layout: TagLayout) -> String {
    let mut ordered: Vec<&(&str, String)> = tags.iter().collect();
    if layout == TagLayout::SuiteCompatible {
        ordered.sort_by(|a, b| a.0.cmp(b.0));
    }
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for (i, (tag, value)) in ordered.iter().enumerate() {
        let piece = format!(
            "{tag}={value}{}",
            if i + 1 < ordered.len() { ";" } else { "" }
        );
        if layout == TagLayout::Folded && i > 0 && line_len + 1 + piece.len() > 78 {
            out.push_str("\r\n\t");
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(&piece);
        line_len += piece.len();
    }
    out.push_str("\r\n");
    out
}
