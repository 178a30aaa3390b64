//! The ARC chain viewer: a pasted or uploaded message verified now, over the server's DNS, and
//! shown as a page a person reads at a glance: every ARC set and DKIM signature as a row (what
//! it claimed, whether its seal and signature still verify and why not, what its hop recorded,
//! which fields it covers), the hop where the chain broke, and the DMARC verdict with its DNS
//! tree walk; a message with DKIM2 fields gets a row per DKIM2 hop too. Server-rendered from
//! one template (minijinja, escaping on); no script.
//!
//! Anyone who reaches the admin listener may paste, so a check has a price list: the header
//! limits SMTP intake enforces, checks at once, DNS questions per check and per client address
//! per minute, a DNS time per check ([`check`], [`gate`]); the work runs off the async runtime
//! and every request is logged ([`http`]).

pub mod check;
mod dkim2_rows;
pub mod gate;
pub mod http;
mod report;

pub(crate) use report::{Report, report};

use super::pages::PageError;

/// Largest message the viewer takes (the admin listener's body limit applies first).
pub const MAX_MESSAGE: usize = 4 << 20;

/// What the page shows: the form alone, a report, or why a message was not checked.
fn render(report: Option<Report>, refused: Option<String>) -> Result<String, PageError> {
    super::pages::render(
        "chain.html",
        minijinja::context! { report => report, refused => refused },
    )
}

/// The empty form.
pub fn form_page() -> Result<String, PageError> {
    render(None, None)
}

/// The message a form submitted: the uploaded file when one was chosen, else the pasted text,
/// as sent ([`check::check`] makes its line endings CRLF).
pub fn submitted(fields: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, v)| n == name && v.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|(_, v)| v.clone())
    };
    field("file").or_else(|| field("message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_form_is_labelled_and_text_is_escaped() {
        let page = form_page().expect("page");
        assert!(page.contains("<label for=\"message\">"));
        assert!(page.contains("<textarea id=\"message\" name=\"message\">"));
        let message = b"From: <script>x</script>@a.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let resolver =
            crate::auth::dns::Resolver::Zone(std::sync::Arc::new(crate::auth::dns::Zone::new()));
        let v = crate::auth::Authenticator::new(resolver, None)
            .verify(message, None, 1_800_000_000)
            .await;
        let page = render(Some(report(message, &v)), None).expect("page");
        assert!(
            !page.contains("<script>x"),
            "nothing from the message reaches the page raw"
        );
        assert!(page.contains("arc=none"));
    }
}
