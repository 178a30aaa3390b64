//! The HTML pages arclist serves (the ARC chain viewer, the console, the lists' public pages): one template
//! environment over the templates built into the binary, made once and shared (minijinja
//! compiles each template on first use and keeps it), escaping on for `.html`, and the headers
//! every page carries.

use super::serve::{Response, html, text};
use std::sync::OnceLock;

/// The templates, by name; the binary carries them, nothing is read at run time.
fn template(name: &str) -> Option<&'static str> {
    Some(match name {
        "chain.html" => include_str!("templates/chain.html"),
        "console_base.html" => include_str!("templates/console_base.html"),
        "console_login.html" => include_str!("templates/console_login.html"),
        "console_held.html" => include_str!("templates/console_held.html"),
        "console_post.html" => include_str!("templates/console_post.html"),
        "console_members.html" => include_str!("templates/console_members.html"),
        "console_delivery.html" => include_str!("templates/console_delivery.html"),
        "console_delivery_post.html" => include_str!("templates/console_delivery_post.html"),
        "console_report.html" => include_str!("templates/console_report.html"),
        "console_settings.html" => include_str!("templates/console_settings.html"),
        "archive_base.html" => include_str!("templates/archive_base.html"),
        "archive_post_line.html" => include_str!("templates/archive_post_line.html"),
        "archive_list.html" => include_str!("templates/archive_list.html"),
        "archive_month.html" => include_str!("templates/archive_month.html"),
        "archive_thread.html" => include_str!("templates/archive_thread.html"),
        "archive_message.html" => include_str!("templates/archive_message.html"),
        "public_base.html" => include_str!("templates/public_base.html"),
        "public_index.html" => include_str!("templates/public_index.html"),
        "public_list.html" => include_str!("templates/public_list.html"),
        "public_message.html" => include_str!("templates/public_message.html"),
        "public_settings.html" => include_str!("templates/public_settings.html"),
        _ => return None,
    })
}

fn environment() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_loader(|name| Ok(template(name).map(str::to_string)));
        env
    })
}

/// A page that could not be made: which template, and minijinja's error.
#[derive(Debug, thiserror::Error)]
#[error("page {name}: {source}")]
pub struct PageError {
    /// The template's name.
    pub name: String,
    /// What minijinja said.
    #[source]
    pub source: minijinja::Error,
}

/// Template `name` rendered with `context`; the error names the template.
pub fn render(name: &str, context: minijinja::Value) -> Result<String, PageError> {
    environment()
        .get_template(name)
        .and_then(|t| t.render(context))
        .map_err(|source| PageError {
            name: name.to_string(),
            source,
        })
}

/// A rendered page as the answer, with its headers; a failed one is logged and answered 500.
pub fn answer(rendered: Result<String, PageError>) -> Response {
    match rendered {
        Ok(body) => secured(html(body)),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be made");
            text(500, "the page could not be made; see the server log")
        }
    }
}

/// Template `name` rendered with `context`, as the answer ([`answer`]).
pub fn page(name: &str, context: minijinja::Value) -> Response {
    answer(render(name, context))
}

/// The page's headers: nothing but its own inline style loads or runs, no one frames it, and
/// nothing on it (a pasted message, a member list) is kept in a cache.
fn secured(mut answer: Response) -> Response {
    let headers = answer.headers_mut();
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    answer
}
