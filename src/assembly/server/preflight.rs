//! What `serve` needs before it binds a listener, checked in one place: `check-config` prints
//! what it found and every problem, and `serve` refuses to start while there is one. Files are
//! checked as the service user will meet them (`owner::Actor`): run as root beside a state
//! folder the service user owns, a key only root can read is a problem, not "ok".

use crate::base::config::owner::Actor;
use crate::base::config::{Config, ServerConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What the checks found.
#[derive(Debug, Default)]
pub struct Preflight {
    /// One line per list, forwarding domain, listener and feature found.
    pub found: Vec<String>,
    /// One line per problem that would stop `serve`, naming the file or setting and the fix.
    pub problems: Vec<String>,
}

/// Whether the store is tried too: `check-config` connects to a database (and reads its
/// schema version), `serve` opens it anyway before it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCheck {
    /// Connect to a database store.
    Connect,
    /// Leave the store to the start.
    Skip,
}

impl Preflight {
    /// Whether nothing stops `serve`.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

/// Checks everything `serve` needs of `config`.
pub async fn check(config: &Config, store: StoreCheck) -> Preflight {
    let who = Actor::current();
    let mut p = Preflight::default();
    lists(config, who, &mut p);
    forwards(config, who, &mut p);
    listeners(&config.server, &mut p);
    tls(&config.server, who, &mut p);
    admin(&config.server, who, &mut p);
    folders(&config.server, who, &mut p);
    bind_addresses(&config.server, &mut p);
    database_tls(&config.server, who, &mut p);
    if store == StoreCheck::Connect {
        database(&config.server, &mut p).await;
    }
    p
}

/// `[delivery] bind_address`, `bind_address6` and their `forward_` twins: addresses of this host, or every delivery
/// would fail to connect (a socket bound to one, as delivery binds it, says so).
fn bind_addresses(server: &ServerConfig, p: &mut Preflight) {
    let d = &server.delivery;
    let addresses = [
        ("bind_address", d.bind_address.map(std::net::IpAddr::V4)),
        ("bind_address6", d.bind_address6.map(std::net::IpAddr::V6)),
        (
            "forward_bind_address",
            d.forward_bind_address.map(std::net::IpAddr::V4),
        ),
        (
            "forward_bind_address6",
            d.forward_bind_address6.map(std::net::IpAddr::V6),
        ),
    ];
    for (name, ip) in addresses {
        let Some(ip) = ip else { continue };
        match std::net::UdpSocket::bind(std::net::SocketAddr::new(ip, 0)) {
            Ok(_) => p.found.push(format!("delivery from {ip}")),
            Err(e) => p.problem(format!(
                "[delivery] {name} {ip}: not an address of this host ({e})"
            )),
        }
    }
}

/// A key (or secret) file: readable by `who` and good, or to be created in a folder `who`
/// can write; what it is, for the list's line.
fn key_state(
    path: &Path,
    owner: &str,
    who: Actor,
    load: impl Fn(&Path) -> Result<(), String>,
    p: &mut Preflight,
) -> &'static str {
    if !path.exists() {
        let folder = path.parent().unwrap_or(Path::new(""));
        if let Err(e) = who.can_create_in(folder) {
            p.problem(format!(
                "{owner}: {} is to be created at the first start, but {e}",
                path.display()
            ));
        }
        return "will be created on first serve";
    }
    let loaded = who.can_read(path).and_then(|()| load(path));
    match loaded {
        Ok(()) => "ok",
        Err(e) => {
            p.problem(format!("{owner}: {}: {e}", path.display()));
            "unusable"
        }
    }
}

fn signing_key(path: &Path) -> Result<(), String> {
    crate::auth::signing_key::SigningKey::from_pem_file(path)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn lists(config: &Config, who: Actor, p: &mut Preflight) {
    for list in &config.lists {
        let owner = format!("list {}", list.address);
        let key = key_state(&list.signing.key, &owner, who, signing_key, p);
        p.found.push(format!(
            "list {} ({}): signs as d={} s={}, key {key}",
            list.address,
            list.file.display(),
            list.signing_domain(),
            list.signing.selector
        ));
    }
}

fn forwards(config: &Config, who: Actor, p: &mut Preflight) {
    for f in &config.forwards {
        let owner = format!("forwarding {}", f.domain);
        let key = key_state(&f.signing.key, &owner, who, signing_key, p);
        let secret = key_state(
            &f.srs.secret_file,
            &owner,
            who,
            |path| {
                crate::stages::forward::read_secrets(path)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
            p,
        );
        let catch_all = if f.catch_all.is_empty() {
            ""
        } else {
            " and a catch-all"
        };
        p.found.push(format!(
            "forwarding {} ({}): {} aliases{catch_all}, seals as d={} s={}, key {key}, SRS secret {secret}",
            f.domain,
            f.file.display(),
            f.aliases.len(),
            f.signing_domain(),
            f.signing.selector
        ));
    }
}

/// Every listener and feature the server file turns on.
fn listeners(server: &ServerConfig, p: &mut Preflight) {
    let joined = |addrs: &[std::net::SocketAddr]| match addrs.is_empty() {
        true => "none".to_string(),
        false => addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    p.found.push(format!(
        "server {}: SMTP on {}, store {}",
        server.hostname,
        joined(&server.listen),
        server.store_display()
    ));
    if !server.lmtp_listen.is_empty() {
        p.found
            .push(format!("LMTP on {}", joined(&server.lmtp_listen)));
    }
    if let Some(addr) = server.socketmap_listen {
        p.found
            .push(format!("Postfix socketmap (recipient checks) on {addr}"));
    }
    p.found.push(format!(
        "local admin socket {} (mode 0660)",
        server.state_dir.join("admin.sock").display()
    ));
    if let Some(http) = &server.http {
        p.found
            .push(format!("one-click unsubscribe HTTP on {}", http.listen));
    }
    if let Some(a) = &server.admin {
        p.found.push(format!(
            "admin listener on {} (token {})",
            a.listen,
            a.token_file.display()
        ));
        if let Some(users) = &a.console_users {
            p.found
                .push(format!("web console (people in {})", users.display()));
        }
        if a.chain_viewer {
            p.found.push("ARC chain viewer at /arc".to_string());
        }
    }
    if let Some(t) = &server.tls {
        p.found.push(format!("STARTTLS with {}", t.cert.display()));
    }
    if let Some(url) = &server.filter.rspamd {
        p.found.push(format!("spam filter: rspamd at {url}"));
    }
    if let Some(host) = &server.delivery.smarthost {
        p.found
            .push(format!("delivery through the smarthost {host}"));
    }
    if let Some(to) = &server.dmarc_reports {
        p.found.push(format!("receives DMARC reports at {to}"));
    }
    if server.send_dmarc_reports {
        p.found.push("sends DMARC aggregate reports".to_string());
    }
}

fn tls(server: &ServerConfig, who: Actor, p: &mut Preflight) {
    if let Some(t) = &server.tls {
        for file in [&t.cert, &t.key] {
            if let Err(e) = who.can_read(file) {
                p.problem(format!("[tls] {}: {e}", file.display()));
                return;
            }
        }
        if let Err(e) = crate::stages::smtp::tls::acceptor(&t.cert, &t.key) {
            p.problem(format!("[tls]: {e}"));
        }
    }
    if let Some(file) = &server.delivery.smarthost_password_file
        && let Err(e) = who.can_read(file)
    {
        p.problem(format!(
            "[delivery] smarthost_password_file {}: {e}",
            file.display()
        ));
    }
    if let Some(ca) = &server.delivery.smarthost_ca
        && let Err(e) = who.can_read(ca)
    {
        p.problem(format!("[delivery] smarthost_ca {}: {e}", ca.display()));
    }
}

fn admin(server: &ServerConfig, who: Actor, p: &mut Preflight) {
    let Some(a) = &server.admin else {
        return;
    };
    let token = &a.token_file;
    match std::fs::metadata(token) {
        Err(e) => p.problem(format!(
            "[admin] token_file {}: cannot be read: {e}",
            token.display()
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => p.problem(format!(
            "[admin] token_file {}: its group or others may read it (mode {:o}); chmod 600 {}",
            token.display(),
            m.permissions().mode() & 0o777,
            token.display()
        )),
        Ok(_) => {
            let read = who.can_read(token).and_then(|()| {
                crate::base::config::read_token(token)
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = read {
                p.problem(format!("[admin] token_file {}: {e}", token.display()));
            }
        }
    }
    if let Some(users) = &a.console_users {
        let loaded = who.can_read(users).and_then(|()| {
            crate::surfaces::web::console::users::load(users)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = loaded {
            p.problem(format!(
                "[admin] console_users {}: {e} (add the first person with `arclist console-user NAME`)",
                users.display()
            ));
        }
    }
}

/// The folders `serve` writes: the state folder (the store file, the local admin socket,
/// messages in transfer). The list files' folder is noted, not required: only `list create`
/// and the console's settings write there.
fn folders(server: &ServerConfig, who: Actor, p: &mut Preflight) {
    if let Err(e) = who.can_create_in(&server.state_dir) {
        p.problem(format!(
            "state_dir {}: the server keeps its store, socket and incoming messages there, but {e}",
            server.state_dir.display()
        ));
    }
    if server.store_url().is_none()
        && server.store.exists()
        && let Err(e) = who.can_read_write(&server.store)
    {
        p.problem(format!(
            "store {}: {e}; it should be the service user's, mode 0600",
            server.store.display()
        ));
    }
    if who.can_create_in(&server.lists_dir).is_err() {
        p.found.push(format!(
            "note: the lists folder {} is read-only to {}: `list create` and the console's settings cannot write list files",
            server.lists_dir.display(),
            who.name()
        ));
    }
}

/// A database store's TLS: its `sslmode` known, its `sslrootcert` file readable, and a note
/// when the server's certificate goes unchecked.
fn database_tls(server: &ServerConfig, who: Actor, p: &mut Preflight) {
    let Some(url) = server.store_url() else {
        return;
    };
    let (mode, root) = match crate::state::store::url_tls(url) {
        Ok(tls) => tls,
        Err(e) => return p.problem(format!("store: {e}")),
    };
    let file = root.as_deref().filter(|r| *r != Path::new("system"));
    if let Some(file) = file
        && let Err(e) = who.can_read(file)
    {
        p.problem(format!("store: sslrootcert {}: {e}", file.display()));
    }
    p.found.push(match mode.verifies(root.as_deref()) {
        true => format!("database TLS: {mode}, the server's certificate checked"),
        false if mode == crate::state::store::SslMode::Disable => {
            "database TLS: off (sslmode=disable)".to_string()
        }
        false => format!(
            "note: database TLS with {mode} encrypts but does not check the server's certificate; across a network use sslmode=verify-full"
        ),
    });
}

/// A database store: connects and reads its schema version, within the connection timeout.
async fn database(server: &ServerConfig, p: &mut Preflight) {
    let Some(url) = server.store_url() else {
        return;
    };
    let reached = async {
        let store = crate::state::store::PgStore::connect(url, &server.hostname, &server.cluster)?;
        store.schema_version().await
    };
    match reached.await {
        Ok((at, newest)) => p.found.push(format!(
            "database reached: schema version {at} (this arclist's newest: {newest})"
        )),
        Err(e) => p.problem(format!("store: {e}")),
    }
}
