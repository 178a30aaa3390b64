//! DKIM2 verdicts and the reasons behind them, worded as §14 of -09 words them so that a
//! report from arclist reads like one from any other -09 verifier.

use serde::{Deserialize, Serialize};

/// The result of a DKIM2 chain or of one hop (the dkim2 authres draft's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dkim2Verdict {
    /// No DKIM2 fields.
    None,
    /// Everything verified.
    Pass,
    /// Something that was checked did not verify (hashes, signatures, custody, From,
    /// envelope, timestamps).
    Fail,
    /// The fields cannot be processed (syntax, numbering, Recipes, unknown algorithms).
    Permerror,
    /// DNS did not answer: no verdict yet.
    Temperror,
}

impl Dkim2Verdict {
    /// The Authentication-Results spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Dkim2Verdict::None => "none",
            Dkim2Verdict::Pass => "pass",
            Dkim2Verdict::Fail => "fail",
            Dkim2Verdict::Permerror => "permerror",
            Dkim2Verdict::Temperror => "temperror",
        }
    }
}

/// Why a DKIM2 chain, hop or instance did not pass. Each carries the instance (`m=`) or hop
/// (`i=`) it is about; the text is §14's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Dkim2Error {
    /// An `m=` between 1 and the highest is absent, or a signature names one that is.
    #[error("Message-Instance m={0} missing")]
    InstanceMissing(u32),
    /// A Message-Instance does not parse.
    #[error("Message-Instance m={m} syntax error ({detail})")]
    InstanceSyntax {
        /// The instance (0 when `m=` itself is unreadable).
        m: u32,
        /// What is wrong.
        detail: String,
    },
    /// The highest instance is newer than every signature.
    #[error("Message-Instance m={0} is not signed")]
    InstanceNotSigned(u32),
    /// The same hash algorithm twice in one `h=`.
    #[error("Message-Instance m={0} has a duplicate hash algorithm")]
    DuplicateHash(u32),
    /// `r=` is not base64 of a JSON Recipe of the §5 shape (-07: a permanent error).
    #[error("Message-Instance m={m} contains invalid JSON ({detail})")]
    RecipeJson {
        /// The instance.
        m: u32,
        /// What is wrong.
        detail: String,
    },
    /// A Recipe step that cannot apply to the content it is given (a copy range past the
    /// end, out of order or overlapping).
    #[error("Message-Instance m={m} Recipe {value} is invalid")]
    RecipeInvalid {
        /// The instance.
        m: u32,
        /// The step, as JSON.
        value: String,
    },
    /// A hash algorithm this verifier does not know (-09: a permanent error for its group).
    #[error("Message-Instance m={m} algorithm {name} unknown")]
    UnknownHash {
        /// The instance.
        m: u32,
        /// The name.
        name: String,
    },
    /// The header hash of an instance does not match its (recreated) content.
    #[error("Message-Instance m={m} header hash {algo} mismatch")]
    HeaderHashMismatch {
        /// The instance.
        m: u32,
        /// `sha256` or `sha512`.
        algo: String,
    },
    /// The body hash of an instance does not match its (recreated) content.
    #[error("Message-Instance m={m} body hash {algo} mismatch")]
    BodyHashMismatch {
        /// The instance.
        m: u32,
        /// `sha256` or `sha512`.
        algo: String,
    },
    /// `"b": null`: the earlier bodies cannot be recreated (-09 §13: permerror; -08: fail).
    #[error("Message-Instance m={0} has a null Recipe, earlier body hashes cannot be checked")]
    NullBodyRecipe(u32),
    /// No DKIM2-Signature although Message-Instance fields are present.
    #[error("DKIM2-Signature i={0} missing")]
    SignatureMissing(u32),
    /// A DKIM2-Signature does not parse.
    #[error("DKIM2-Signature i={i} syntax error ({detail})")]
    SignatureSyntax {
        /// The hop (0 when `i=` itself is unreadable).
        i: u32,
        /// What is wrong.
        detail: String,
    },
    /// A required tag is absent.
    #[error("DKIM2-Signature i={i} tag={tag} missing")]
    SignatureTagMissing {
        /// The hop.
        i: u32,
        /// The tag.
        tag: String,
    },
    /// Two selectors of one signature are the same.
    #[error("DKIM2-Signature i={0} has a duplicate selector")]
    DuplicateSelector(u32),
    /// Hops are not numbered 1, 2, … (a hop removed, repeated or out of order).
    #[error("DKIM2-Signature i={0} missing")]
    SequenceGap(u32),
    /// A hop signs an older instance than the hop before it.
    #[error("DKIM2-Signature i={i} m={m} is older than the m= of i={previous}")]
    InstanceOrder {
        /// The hop.
        i: u32,
        /// Its `m=`.
        m: u32,
        /// The hop before it.
        previous: u32,
    },
    /// More fields than [`super::MAX_FIELDS`].
    #[error("Too many DKIM2 header fields")]
    ChainTooLong,
    /// `t=` is older than 14 days (-08: fail).
    #[error("DKIM2-Signature i={0} signature expired")]
    Expired(u32),
    /// `t=` is more than a day ahead.
    #[error("DKIM2-Signature i={0} signature is from the future")]
    FromFuture(u32),
    /// The MAIL FROM the message arrived with is not the top hop's `mf=` (-08: fail).
    #[error("DKIM2-Signature i={i} MAIL FROM {value} did not match")]
    MailFromMismatch {
        /// The top hop.
        i: u32,
        /// The envelope's MAIL FROM.
        value: String,
    },
    /// A RCPT TO the message arrived with is not in the top hop's `rt=`: a replay.
    #[error("DKIM2-Signature i={i} RCPT TO {value} did not match")]
    RcptToMismatch {
        /// The top hop.
        i: u32,
        /// The envelope's RCPT TO.
        value: String,
    },
    /// The top hop says `nd=`: it did not send the message over SMTP itself.
    #[error("DKIM2-Signature i={0} tag=nd was unexpected")]
    NextDomainOnTop(u32),
    /// `mf=` is not within `d=`.
    #[error("DKIM2-Signature i={0} MAIL FROM and d= do not match")]
    MailFromDomainMismatch(u32),
    /// `nd=` of the hop before does not name this hop's `d=`.
    #[error("DKIM2-Signature i={0} nd= does not match")]
    NextDomainMismatch(u32),
    /// Chain of custody: this hop's `mf=` domain is not one the previous hop sent to.
    #[error("DKIM2-Signature i={i} mf= does not match the rt= of i={previous}")]
    CustodyMailFrom {
        /// The hop.
        i: u32,
        /// The hop before it.
        previous: u32,
    },
    /// Chain of custody (null `mf=`): this hop's `d=` is not one the previous hop sent to.
    #[error("DKIM2-Signature i={i} d= does not match the rt= of i={previous}")]
    CustodyDomain {
        /// The hop.
        i: u32,
        /// The hop before it.
        previous: u32,
    },
    /// DNS did not answer for the key.
    #[error("DKIM2-Signature i={i} public key {selector} could not be fetched ({detail})")]
    KeyFetch {
        /// The hop.
        i: u32,
        /// The selector.
        selector: String,
        /// The DNS error.
        detail: String,
    },
    /// No key record at the selector.
    #[error("DKIM2-Signature i={i} public key {selector} does not exist")]
    KeyMissing {
        /// The hop.
        i: u32,
        /// The selector.
        selector: String,
    },
    /// A key record that cannot be used (syntax, revoked, too short, wrong type).
    #[error("DKIM2-Signature i={i} public key {selector} is unusable ({detail})")]
    KeyUnusable {
        /// The hop.
        i: u32,
        /// The selector.
        selector: String,
        /// What is wrong.
        detail: String,
    },
    /// The signature value does not verify with the key.
    #[error("DKIM2-Signature i={i} selector {selector} incorrect signature")]
    IncorrectSignature {
        /// The hop.
        i: u32,
        /// The selector.
        selector: String,
    },
    /// An algorithm this verifier does not know (-09: a permanent error for its group).
    #[error("DKIM2-Signature i={i} selector {selector} algorithm unknown")]
    UnknownAlgorithm {
        /// The hop.
        i: u32,
        /// The selector.
        selector: String,
    },
    /// The From of the instance a hop introduced is not within that hop's `d=` (-09 §11).
    #[error("DKIM2-Signature i={0} matching From is not authentic")]
    FromNotAuthentic(u32),
}

impl Dkim2Error {
    /// The verdict class this reason gives under -09.
    pub fn verdict(&self) -> Dkim2Verdict {
        use Dkim2Error::*;
        match self {
            HeaderHashMismatch { .. }
            | BodyHashMismatch { .. }
            | Expired(_)
            | FromFuture(_)
            | MailFromMismatch { .. }
            | RcptToMismatch { .. }
            | NextDomainOnTop(_)
            | MailFromDomainMismatch(_)
            | NextDomainMismatch(_)
            | CustodyMailFrom { .. }
            | CustodyDomain { .. }
            | IncorrectSignature { .. }
            | FromNotAuthentic(_) => Dkim2Verdict::Fail,
            KeyFetch { .. } => Dkim2Verdict::Temperror,
            _ => Dkim2Verdict::Permerror,
        }
    }
}
