//! One hop, many recipients: a list that sends the same post to every member, each in a
//! transaction of its own because `rt=` names the recipient (§10.5).
//!
//! The work is split so that the body is hashed once per post: [`Dkim2Signer::prepare`] makes
//! the hop's Message-Instance (with the Recipe of [`wrap_recipe`]) when the post is made, and
//! [`Dkim2Signer::sign_prepared`] gives each recipient's copy that instance with its header
//! hash redone (a member's own List-Unsubscribe is a signed field) and the hop's signature for
//! that recipient's envelope: per recipient, one header hash and one signature.

use super::fields::InstanceField;
use super::hash::ContentState;
use super::recipe::{BodyRecipe, Recipe, Step, body_lines};
use super::sign::{Dkim2Signer, SignRefusal, Signed, field_value};
use super::verify::{Dkim2Envelope, Dkim2Report, check_custody, parse_fields};
use super::{Dkim2Error, domain_within};
use crate::message::RawMessage;
use std::collections::BTreeSet;

/// The "always-wrap" Recipe (the layout of the Mailman and Sympa DKIM2 series): it recreates
/// `before` (the message as the hop received it) from `after` (the hop's copy). Every signed
/// header name whose fields changed is restored by literals (none: removed); the received
/// body by copy ranges of the copy's lines alone, so the author's content is never repeated in
/// the Recipe. `Err` says why the body cannot be recreated that way: the hop re-encoded or
/// restructured it (a footer added inside an encoded part, the post wrapped in a new message).
///
/// `per_recipient` names the fields the hop adds later to each recipient's copy (one-click's
/// List-Unsubscribe): the Recipe restores those names too, whatever each copy carries, so
/// one Recipe serves every recipient.
pub fn wrap_recipe(before: &[u8], after: &[u8], per_recipient: &[&str]) -> Result<Recipe, String> {
    let (old, new) = (RawMessage::parse(before), RawMessage::parse(after));
    let (old_fields, new_fields) = (
        ContentState::headers_of(&old),
        ContentState::headers_of(&new),
    );
    let added: BTreeSet<String> = per_recipient
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let names: BTreeSet<&String> = (old_fields.headers.keys())
        .chain(new_fields.headers.keys())
        .chain(&added)
        .collect();
    let mut headers = Vec::new();
    for name in names {
        let was = old_fields.headers.get(name);
        if was == new_fields.headers.get(name) && !added.contains(name) {
            continue;
        }
        let steps = was.map_or_else(Vec::new, |values| {
            values.iter().map(|v| literal(v)).collect::<Vec<Step>>()
        });
        headers.push((name.clone(), steps));
    }
    let body = if old.body == new.body {
        BodyRecipe::Unchanged
    } else {
        BodyRecipe::Steps(body_steps(&body_lines(old.body), &body_lines(new.body))?)
    };
    Ok(Recipe { headers, body })
}

/// One field value as a literal step: the folding taken out (relaxed canonicalization, which
/// the header hash uses, unfolds anyway), UTF-8 as `d`, anything else as `u`.
fn literal(value: &[u8]) -> Step {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    match String::from_utf8(unfolded) {
        Ok(text) => Step::Data(vec![text]),
        Err(e) => Step::Bytes(vec![e.into_bytes()]),
    }
}

/// Copy ranges of `new` that recreate `old`: one range when `old` is in `new` whole (a
/// header and footer around it), else a leading and a trailing range (a footer part put
/// before a multipart's closing boundary).
fn body_steps(old: &[&[u8]], new: &[&[u8]]) -> Result<Vec<Step>, String> {
    if old.is_empty() {
        return Ok(Vec::new());
    }
    let fits = old.len() <= new.len();
    if fits && let Some(at) = (0..=new.len() - old.len()).find(|&i| new[i..i + old.len()] == *old) {
        return Ok(vec![copy(at + 1, at + old.len())]);
    }
    let lead = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let trail = (old.iter().rev())
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if !fits || lead + trail < old.len() {
        return Err(format!(
            "the received body (lines {} to {} of {}) is not in the copy unchanged: it was \
             re-encoded or restructured, so no copy range recreates it",
            lead + 1,
            old.len().saturating_sub(trail).max(lead + 1),
            old.len()
        ));
    }
    let tail = old.len() - lead;
    let mut steps = Vec::with_capacity(2);
    if lead > 0 {
        steps.push(copy(1, lead));
    }
    if tail > 0 {
        steps.push(copy(new.len() - tail + 1, new.len()));
    }
    Ok(steps)
}

fn copy(start: usize, end: usize) -> Step {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Step::Copy {
        start: n(start),
        end: n(end),
    }
}

impl Dkim2Signer {
    /// Once per post: the Message-Instance (`Message-Instance: …` with CRLF) of the hop that
    /// changed `message` as `recipe` says, after every check [`Dkim2Signer::sign`] makes that
    /// does not depend on the envelope (the incoming chain fully verified, the From rule). On
    /// a message without DKIM2 fields this hop starts the chain: `m=1`, no Recipe.
    pub fn prepare(
        &self,
        message: &[u8],
        recipe: Recipe,
        verified: Option<&Dkim2Report>,
    ) -> Result<String, SignRefusal> {
        let parsed = RawMessage::parse(message);
        let (sigs, mis) = self.chain_to_extend(&parsed, verified)?;
        let i = sigs.last().map_or(0, |p| p.field.i) + 1;
        let m = mis.last().map_or(0, |p| p.field.m) + 1;
        let content = ContentState::of(&parsed);
        let changes_from = recipe.headers.iter().any(|(n, _)| n == "from");
        if (i == 1 || changes_from)
            && !content
                .from_domain()
                .is_some_and(|d| domain_within(&d, &self.domain))
        {
            return Err(SignRefusal::WouldFail(Dkim2Error::FromNotAuthentic(i)));
        }
        Ok(self.instance(m, &content, Some(recipe)).render())
    }

    /// Per recipient: `copy` (the post as [`Dkim2Signer::prepare`] saw it, perhaps with
    /// header fields of the recipient's own on top, the body unchanged) gets `instance`, the
    /// field `prepare` returned, with its header hashes redone for `copy`, and this hop's
    /// DKIM2-Signature for the envelope `hop`. [`Signed::prepend_to`] on `copy` gives the copy
    /// to send. For many recipients of one post, [`Dkim2Signer::fan_out`] once and
    /// [`Dkim2Signer::sign_member`] for each does the same work once instead of each time.
    pub fn sign_prepared(
        &self,
        instance: &[u8],
        copy: &[u8],
        hop: &Dkim2Envelope,
        now: u64,
    ) -> Result<Signed, SignRefusal> {
        self.sign_member(&self.fan_out(instance, copy)?, None, hop, now)
    }

    /// Once per post: what every recipient's signature shares, for `shared` (the post as
    /// [`Dkim2Signer::prepare`] saw it) and `instance`, the field `prepare` returned.
    pub fn fan_out(&self, instance: &[u8], shared: &[u8]) -> Result<Dkim2Fanout, SignRefusal> {
        let text = String::from_utf8_lossy(instance);
        let value = text
            .split_once(':')
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("Message-Instance"))
            .map(|(_, v)| v.replace(['\r', '\n'], ""))
            .ok_or_else(|| SignRefusal::Prepared("no Message-Instance was prepared".into()))?;
        let mut mine = InstanceField::parse(&value).map_err(SignRefusal::WouldFail)?;
        let parsed = RawMessage::parse(shared);
        let (sigs, mis) =
            parse_fields(&parsed.headers).map_err(|e| SignRefusal::NotVerified(e.to_string()))?;
        let newest = mis.last().map_or(0, |p| p.field.m);
        if mine.m != newest + 1 || sigs.iter().any(|p| p.field.m >= mine.m) {
            return Err(SignRefusal::Prepared(format!(
                "the prepared instance m={} does not follow the copy's newest, m={newest}",
                mine.m
            )));
        }
        hash_headers(&mut mine, &parsed);
        Ok(Dkim2Fanout {
            rendered: mine.render(),
            mine,
            instances: mis.iter().map(|p| p.value.to_vec()).collect(),
            earlier: sigs.iter().map(|p| p.value.to_vec()).collect(),
            i: sigs.last().map_or(0, |p| p.field.i) + 1,
            last: sigs.into_iter().next_back().map(|p| p.field),
        })
    }

    /// Per recipient: this hop's fields for the envelope `hop`, on the post `fanout` was made
    /// for, or on `personal`, that post with header fields of the recipient's own on top
    /// (whose instance header hash is then redone). [`Signed::prepend_to`] on the copy gives
    /// the copy to send.
    pub fn sign_member(
        &self,
        fanout: &Dkim2Fanout,
        personal: Option<&[u8]>,
        hop: &Dkim2Envelope,
        now: u64,
    ) -> Result<Signed, SignRefusal> {
        if hop.rcpt_to.is_empty() {
            return Err(SignRefusal::NoRecipients);
        }
        let rendered = match personal {
            None => fanout.rendered.clone(),
            Some(copy) => {
                let mut mine = fanout.mine.clone();
                hash_headers(&mut mine, &RawMessage::parse(copy));
                mine.render()
            }
        };
        let sig = self.signature_field(fanout.i, fanout.mine.m, hop, now);
        check_custody(fanout.last.as_ref(), &sig).map_err(SignRefusal::WouldFail)?;
        let mut instance_values: Vec<&[u8]> = fanout.instances.iter().map(Vec::as_slice).collect();
        instance_values.push(field_value(&rendered));
        let earlier: Vec<&[u8]> = fanout.earlier.iter().map(Vec::as_slice).collect();
        Ok(Signed {
            i: fanout.i,
            m: fanout.mine.m,
            signature: self.seal(sig, &instance_values, &earlier)?,
            instance: Some(rendered),
        })
    }
}

/// What every recipient's DKIM2 signature on one post shares ([`Dkim2Signer::fan_out`]): the
/// prepared instance with its header hashes for the shared copy, the copy's earlier DKIM2
/// fields, and the hop number. A recipient's signature then costs the signature itself, and
/// a header hash when their copy has fields of its own.
#[derive(Debug, Clone)]
pub struct Dkim2Fanout {
    mine: InstanceField,
    /// `mine` as a field, for copies without fields of their own.
    rendered: String,
    /// The values of the post's instances, oldest first.
    instances: Vec<Vec<u8>>,
    /// The values of the earlier hops' signatures, oldest first.
    earlier: Vec<Vec<u8>>,
    /// The newest earlier signature, whose custody this hop continues.
    last: Option<super::fields::SignatureField>,
    i: u32,
}

/// Redoes `instance`'s header hashes for `copy`.
fn hash_headers(instance: &mut InstanceField, copy: &RawMessage<'_>) {
    let fields = ContentState::headers_of(copy);
    for entry in instance.hashes.iter_mut().flatten() {
        entry.header = fields.header_hash(&entry.algo).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&[u8]> {
        text.split('\n').map(str::as_bytes).collect()
    }

    #[test]
    fn the_received_body_is_copied_never_repeated() {
        let one = body_steps(&lines("a\nb"), &lines("head\na\nb\nfoot")).expect("fits");
        assert_eq!(one, [copy(2, 3)]);
        // A footer part before a multipart's closing boundary: a leading and a trailing range.
        let two = body_steps(
            &lines("--b\nx\n--b--"),
            &lines("--b\nx\n--b\nfooter\n--b--"),
        )
        .expect("fits");
        assert_eq!(two, [copy(1, 2), copy(5, 5)]);
        let e = body_steps(&lines("aGVsbG8=\nend"), &lines("aGVsbG8gZm9vdGVy\nend"))
            .expect_err("re-encoded");
        assert!(e.contains("lines 1 to 1 of 2"), "{e}");
        assert_eq!(body_steps(&[], &lines("x")), Ok(Vec::new()));
    }

    #[test]
    fn changed_and_added_fields_become_literals() {
        let before = b"From: a@x.test\r\nSubject: Hi\r\n there\r\n\r\nbody\r\n";
        let after = b"List-Id: <l.x.test>\r\nX-Loop: l\r\nFrom: a@x.test\r\nSubject: [l] Hi\r\n there\r\n\r\nbody\r\nfooter\r\n";
        let r = wrap_recipe(before, after, &["List-Unsubscribe"]).expect("recipe");
        assert_eq!(
            String::from_utf8_lossy(&r.to_json()),
            r#"{"h":{"list-id":[],"list-unsubscribe":[],"subject":[{"d":[" Hi there"]}]},"b":[{"c":[1,1]}]}"#
        );
    }
}
