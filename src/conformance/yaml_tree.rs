//! A YAML reader that keeps duplicate mapping keys.
//!
//! The open ARC test suite repeats four test ids inside one mapping; an ordinary YAML loader
//! keeps only the last of each, silently dropping four cases. This builds a tree from the
//! parser's events with mappings as ordered lists of pairs, so every case is seen.

use yaml_rust2::parser::{Event, EventReceiver, Parser};

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar, as text.
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order, duplicates kept.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The first value for `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar's text (empty for anything else).
    pub fn text(&self) -> &str {
        match self {
            Node::Scalar(s) => s,
            _ => "",
        }
    }

    /// A mapping's pairs (empty for anything else).
    pub fn pairs(&self) -> &[(String, Node)] {
        match self {
            Node::Map(p) => p,
            _ => &[],
        }
    }
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<(Node, Option<String>)>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((Node::Seq(items), _)) => items.push(node),
            Some((Node::Map(pairs), pending)) => match pending.take() {
                None => *pending = Some(node.text().to_string()),
                Some(key) => pairs.push((key, node)),
            },
            Some((Node::Scalar(_), _)) => {}
        }
    }
}

impl EventReceiver for Builder {
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Scalar(s, ..) => self.push_value(Node::Scalar(s)),
            Event::SequenceStart(..) => self.stack.push((Node::Seq(Vec::new()), None)),
            Event::MappingStart(..) => self.stack.push((Node::Map(Vec::new()), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            _ => {}
        }
    }
}

/// Parses every document in `text`.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, yaml_rust2::ScanError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text).load(&mut builder, true)?;
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys() {
        let docs = parse_documents("a:\n  x: 1\n  x: 2\n---\nb: |\n  line\n").expect("yaml");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].get("a").map(|m| m.pairs().len()), Some(2));
        assert_eq!(docs[1].get("b").map(Node::text), Some("line\n"));
    }
}
