//! Collecting ARC sets by instance, wherever they stand in the header block.

use crate::key_record::SigAlg;
use crate::message::{HeaderField, RawMessage};
use crate::tags::{TagList, strip_fws};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// RFC 8617 §4.2.1: at most 50 sets.
pub const MAX_SETS: u32 = 50;

/// One complete ARC set.
#[derive(Debug, Clone)]
pub struct ArcSet<'a> {
    /// `i=`.
    pub instance: u32,
    /// ARC-Authentication-Results.
    pub aar: HeaderField<'a>,
    /// ARC-Message-Signature.
    pub ams: HeaderField<'a>,
    /// ARC-Seal.
    pub seal: HeaderField<'a>,
}

/// A parsed ARC-Seal.
#[derive(Debug, Clone)]
pub struct SealTags {
    /// `a=`.
    pub algorithm: SigAlg,
    /// `b=`, decoded.
    pub b: Vec<u8>,
    /// `cv=`: `none`, `pass` or `fail`.
    pub cv: String,
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
}

impl SealTags {
    /// Parses an ARC-Seal value; anything RFC 8617 §4.1.3 forbids (an `h=` tag, a missing or
    /// unknown `cv=`) is an error.
    pub fn parse(value: &str) -> Result<Self, String> {
        let tags = TagList::parse(value).map_err(|e| e.to_string())?;
        if tags.get("h").is_some() {
            return Err("ARC-Seal carries an h= tag".into());
        }
        let need = |n: &str| {
            tags.get(n)
                .ok_or_else(|| format!("ARC-Seal has no {n}= tag"))
        };
        let cv = need("cv")?.to_string();
        if !matches!(cv.as_str(), "none" | "pass" | "fail") {
            return Err(format!("ARC-Seal cv={cv} is not none/pass/fail"));
        }
        let algorithm = SigAlg::parse(need("a")?)?;
        let b = STANDARD
            .decode(strip_fws(need("b")?))
            .map_err(|_| "ARC-Seal b= is not base64".to_string())?;
        let domain = need("d")?.to_ascii_lowercase();
        let selector = need("s")?.to_string();
        if domain.is_empty() || selector.is_empty() {
            return Err("ARC-Seal has an empty d= or s=".into());
        }
        need("i")?;
        Ok(SealTags {
            algorithm,
            b,
            cv,
            domain,
            selector,
        })
    }
}

/// The instance number a field claims, or why it has none.
fn instance_of(field: &HeaderField<'_>, is_aar: bool) -> Result<u32, String> {
    let value = field.unfolded_value();
    let raw = if is_aar {
        // AAR: `i=N;` comes first, then an Authentication-Results payload.
        let first = value.split(';').next().unwrap_or_default();
        let (k, v) = first.split_once('=').ok_or("AAR does not start with i=")?;
        if k.trim() != "i" {
            return Err("AAR does not start with i=".into());
        }
        v.trim().to_string()
    } else {
        // Tag parsing errors are reported when the field is checked; here only i= matters.
        value
            .split(';')
            .filter_map(|spec| spec.split_once('='))
            .find(|(k, _)| k.trim() == "i")
            .map(|(_, v)| v.trim().to_string())
            .ok_or("no i= tag")?
    };
    let n: u32 = raw
        .parse()
        .map_err(|_| format!("i={raw} is not a number"))?;
    if n == 0 || n > MAX_SETS {
        return Err(format!("i={n} is outside 1..={MAX_SETS}"));
    }
    Ok(n)
}

/// Groups the message's ARC fields into sets. `Ok(vec![])` means no ARC fields at all; an
/// error means the chain is structurally broken (missing or duplicate members, gaps, more
/// than 50), which fails it.
pub fn collect_sets<'a>(message: &RawMessage<'a>) -> Result<Vec<ArcSet<'a>>, String> {
    type Slot<'a> = [Option<HeaderField<'a>>; 3];
    let mut slots: Vec<Slot<'a>> = Vec::new();
    let mut any = false;
    for field in &message.headers {
        let (which, name) = if field.is("ARC-Authentication-Results") {
            (0, "ARC-Authentication-Results")
        } else if field.is("ARC-Message-Signature") {
            (1, "ARC-Message-Signature")
        } else if field.is("ARC-Seal") {
            (2, "ARC-Seal")
        } else {
            continue;
        };
        any = true;
        let n = instance_of(field, which == 0).map_err(|e| format!("{name}: {e}"))? as usize;
        if slots.len() < n {
            slots.resize(n, [None, None, None]);
        }
        let slot = &mut slots[n - 1][which];
        if slot.is_some() {
            return Err(format!("two {name} fields with i={n}"));
        }
        *slot = Some(*field);
    }
    if !any {
        return Ok(Vec::new());
    }
    let mut sets = Vec::with_capacity(slots.len());
    for (i, slot) in slots.into_iter().enumerate() {
        let n = i + 1;
        match slot {
            [Some(aar), Some(ams), Some(seal)] => sets.push(ArcSet {
                instance: n as u32,
                aar,
                ams,
                seal,
            }),
            [aar, ams, seal] => {
                let missing: Vec<&str> = [
                    (aar.is_none(), "ARC-Authentication-Results"),
                    (ams.is_none(), "ARC-Message-Signature"),
                    (seal.is_none(), "ARC-Seal"),
                ]
                .into_iter()
                .filter(|(m, _)| *m)
                .map(|(_, n)| n)
                .collect();
                return Err(format!("set i={n} is missing {}", missing.join(", ")));
            }
        }
    }
    Ok(sets)
}
