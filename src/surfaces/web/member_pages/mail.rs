//! The mail the public pages send: a subscription's confirmation link and a member's settings
//! link, each bounded per client and per address, and answered the same whatever happened.

use super::{MemberPages, Posted, message_page, path_of};
use crate::stages::list::ListRuntime;
use crate::stages::list::notice::{Notice, send_new};
use crate::stages::list::tokens::{self, LinkUse};
use crate::surfaces::web::serve::{Request, Response, text};

impl MemberPages {
    /// `POST /lists/LIST/subscribe` or `.../settings-link`: mails the link when it may, and
    /// answers the same whether or not the address is a member (no one learns who is).
    pub(super) async fn mail_link(
        &self,
        request: &Request,
        list: &ListRuntime,
        what: &str,
        posted: &Posted,
        secret: &[u8],
    ) -> Response {
        let address = posted.field("address").trim().to_ascii_lowercase();
        if !crate::base::config::valid_address(&address) {
            return text(400, "that is not an email address");
        }
        let now = crate::auth::unix_now();
        if !self.clients.allow(&request.client.to_string(), now) {
            tracing::info!(client = %request.client, list = %list.config.address, "public page: too many mail requests from this client this hour");
            return text(
                429,
                "too many requests from your address this hour; try again later",
            );
        }
        let join = what == "subscribe";
        let name = crate::base::config::clean_member_name(posted.field("name"));
        let sent = self.send(list, &address, &name, join, secret, now).await;
        tracing::info!(client = %request.client, list = %list.config.address, %address, what, sent, "public page mail request");
        let body = match join {
            true => format!(
                "If {address} may join {}, a message with a link to confirm is on its way to it. The link works for {} days.",
                list.config.display_name(),
                tokens::VALID_DAYS
            ),
            false => format!(
                "If {address} is a member of {}, a message with a link to its settings is on its way to it. The link works for {} days.",
                list.config.display_name(),
                tokens::VALID_DAYS
            ),
        };
        message_page(list, "Check your mailbox", &body, None)
    }

    /// Sends the link (a join link carries the optional `name` the form was given) when it should go: not to the list's own addresses, a settings link
    /// only to a member, and within the list robot's hourly limit for the address. Whether
    /// it was sent, for the log.
    async fn send(
        &self,
        list: &ListRuntime,
        address: &str,
        name: &str,
        join: bool,
        secret: &[u8],
        now: u64,
    ) -> bool {
        let cfg = &list.config;
        if crate::stages::list::robots::is_own_address(address, cfg) {
            return false;
        }
        if !join && !matches!(self.store.is_member(&cfg.address, address).await, Ok(true)) {
            return false;
        }
        if !list.replies.allow(address, now) {
            return false;
        }
        let use_ = if join {
            LinkUse::Join
        } else {
            LinkUse::Settings
        };
        let Ok(token) = tokens::seal_link(secret, use_, &cfg.address, address, now) else {
            return false;
        };
        let base = list.base_url().unwrap_or_default().trim_end_matches('/');
        let what = if join { "confirm" } else { "settings" };
        let mut link = format!("{base}{}/{what}/{token}", path_of(&cfg.address));
        if join && !name.is_empty() {
            // Not sealed: it only fills in the confirmation page's name field, which the
            // person confirming sees and may change.
            link.push_str("?name=");
            link.push_str(&crate::surfaces::web::form::encode(name));
        }
        let (subject, body) = match join {
            true => (
                format!("Confirm your subscription to {}", cfg.display_name()),
                format!(
                    "Someone, hopefully you, asked on the list's page to subscribe {address} to the {} list ({}).\r\n\r\n\
                     To confirm, open this link and press Confirm:\r\n\r\n    {link}\r\n\r\n\
                     If you did not ask, ignore this message: nothing changes, and the link expires in {} days.\r\n",
                    cfg.display_name(),
                    cfg.address,
                    tokens::VALID_DAYS
                ),
            ),
            false => (
                format!("Your settings for {}", cfg.display_name()),
                format!(
                    "Someone, hopefully you, asked for a link to {address}'s settings on the {} list ({}).\r\n\r\n\
                     This link opens them (how you get the list's mail, or leaving it):\r\n\r\n    {link}\r\n\r\n\
                     It works for {} days. Do not share it: it lets whoever has it change your settings.\r\n",
                    cfg.display_name(),
                    cfg.address,
                    tokens::VALID_DAYS
                ),
            ),
        };
        let (store, list_address, to) =
            (self.store.clone(), cfg.address.clone(), address.to_string());
        let Some(runtime) = self.lists.get(&list_address) else {
            return false;
        };
        let why = format!("{what} link for {to} asked for on the list's page");
        let queued = self.tasks.spawn_blocking(move || {
            let notice = Notice {
                to: vec![to],
                subject: &subject,
                body: &body,
                reply_to: None,
            };
            send_new(&store, &runtime, notice, &why)
        });
        match queued.await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::error!(list = %list_address, error = %e, "the public page's mail could not be queued");
                false
            }
            Err(e) => {
                tracing::error!(list = %list_address, error = %e, "the public page's mail task failed");
                false
            }
        }
    }
}
