//! The server file.

use super::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `url` with the password left out, for messages and logs: the one in the user part (which
/// may itself hold `@`) and a `password=` parameter.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => rest.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) if !q.is_empty() => format!("{scheme}://{rest}?{q}"),
        _ => format!("{scheme}://{rest}"),
    }
}

/// How nodes sharing a PostgreSQL store split the work: each node claims what it works on for
/// a lease, renews it while alive, and the others take over what a dead node's lapsed lease
/// leaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Seconds a claim lasts without renewal: how long a dead node's work waits before
    /// another node takes it over. Default 60.
    pub lease_secs: u64,
    /// Most recipients of one post one node claims at a time, so other nodes share a big
    /// fan-out. Default 5000.
    pub claim_batch: usize,
    /// Connections to the database per node. Default 16.
    pub pool_size: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            lease_secs: 60,
            claim_batch: 5000,
            pool_size: 16,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The server's settings. Every field has a default; see `docs/configuration.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Our host name: the SMTP greeting, the authserv-id in results. Default `localhost`.
    pub hostname: String,
    /// SMTP listen addresses. Default `["127.0.0.1:2525"]`.
    pub listen: Vec<SocketAddr>,
    /// LMTP listen addresses, for running behind Postfix or Exim. Default none.
    pub lmtp_listen: Vec<SocketAddr>,
    /// Where Postfix asks which recipients exist (socketmap_table(5), for
    /// `relay_recipient_maps`). Default none.
    pub socketmap_listen: Option<SocketAddr>,
    /// The store: a file (created when missing), or a `postgresql://` URL shared by several
    /// arclist nodes (`docs/scaling.md`). Default `var/arclist.redb`.
    pub store: PathBuf,
    /// How nodes sharing a PostgreSQL store split the work (unused with a store file).
    pub cluster: ClusterConfig,
    /// Where this node keeps its own files (large messages while they arrive, the admin
    /// listener's address for the CLI). Default: the store file's folder, or `var` beside
    /// the server file with a shared store.
    pub state_dir: PathBuf,
    /// The folder of list files. Default `lists`.
    pub lists_dir: PathBuf,
    /// The folder of forwarding-domain files. Default none (no forwarding).
    pub forwards_dir: Option<PathBuf>,
    /// Log format. Default `text`.
    pub log_format: LogFormat,
    /// STARTTLS certificate and key. Default none (STARTTLS not offered).
    pub tls: Option<TlsConfig>,
    /// DNS settings.
    pub dns: DnsConfig,
    /// Protocol and resource limits.
    pub limits: Limits,
    /// How mail leaves (used by the delivery stage).
    pub delivery: DeliveryConfig,
    /// The HTTP listener for one-click unsubscribe. Default none.
    pub http: Option<HttpConfig>,
    /// The admin HTTP listener (Prometheus metrics). Default none.
    pub admin: Option<AdminConfig>,
    /// How long finished work is kept.
    pub retention: RetentionConfig,
    /// How many messages are authenticated at once, and when retrying ends.
    pub pipeline: PipelineConfig,
    /// Relays in front of arclist (Postfix, say) whose XCLIENT and XFORWARD are believed:
    /// addresses or CIDR blocks. Default none.
    pub trusted_relays: super::Cidrs,
    /// The local part at which every list domain takes receivers' DMARC aggregate reports
    /// (`dmarc-reports` makes `dmarc-reports@LISTDOMAIN`), to publish as the list domain's
    /// `rua=`. Default none.
    pub dmarc_reports: Option<String>,
    /// Send DMARC aggregate reports (RFC 9990) each day to the author domains of posts whose
    /// records ask for them (`rua=`). Default false.
    pub send_dmarc_reports: bool,
    /// The spam and malware filter asked before `250` (`docs/filtering.md`). Default none.
    pub filter: super::FilterConfig,
    /// The server file these settings were read from (none for the built-in defaults): what a
    /// reload reads again.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// How long finished work is kept before the background pruner removes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days the metadata of finished messages (what `arclist report` counts) and the delivery
    /// summaries of finished posts (what late bounces are matched against) are kept. Default 30.
    pub records_days: f64,
    /// Days the raw bytes of finished messages (spooled and signed) are kept. Default 7. Held
    /// posts are kept until a moderator decides, whatever their age.
    pub raw_days: f64,
    /// Seconds between pruning runs. Default 600.
    pub prune_every_secs: u64,
    /// Days a list remembers the Message-IDs it distributed: a post whose Message-ID it
    /// distributed within this window is not distributed again. Default 7; 0 turns it off.
    pub duplicates_days: f64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            records_days: 30.0,
            raw_days: 7.0,
            prune_every_secs: 600,
            duplicates_days: 7.0,
        }
    }
}

/// The pipeline between the spool and the queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Messages authenticated at once, so that slow DNS answers overlap. Default 16.
    pub concurrency: usize,
    /// Hours a message may be retried after temporary DNS failures; then it is held for the
    /// moderator with the reason, never dropped. Default 24.
    pub hold_after_hours: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            concurrency: 16,
            hold_after_hours: 24,
        }
    }
}

/// An error naming the first of `values` (key, value) that is 0.
fn at_least_one(path: &Path, text: &str, values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(ConfigError::at(
            path,
            text,
            find_key(text, key),
            format!("{key} must be at least 1"),
        )),
        None => Ok(()),
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where to listen, e.g. `127.0.0.1:8025` behind a TLS-terminating web server.
    pub listen: SocketAddr,
    /// The public base URL that reaches it, e.g. `https://lists.example.org`.
    pub base_url: String,
    /// Addresses of the web server in front, exempt from the per-address connection limit
    /// (every request comes from them). Default the loopback addresses `127.0.0.1` and `::1`.
    #[serde(default = "loopback")]
    pub proxies: Vec<std::net::IpAddr>,
}

fn loopback() -> Vec<std::net::IpAddr> {
    vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ]
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen, e.g. `127.0.0.1:9425`.
    pub listen: SocketAddr,
    /// A file whose first line is the bearer token scrapers must send (16 characters at
    /// least; keep the file mode 0600).
    pub token_file: PathBuf,
    /// Serve the ARC chain viewer at `/arc` to anyone who reaches the listener, without the
    /// token. Default false.
    #[serde(default)]
    pub chain_viewer: bool,
    /// The chain viewer's budgets (`[admin.viewer]`).
    #[serde(default)]
    pub viewer: ViewerConfig,
    /// The web console's people (`arclist console-user` writes it); with it, `/console` is
    /// served, behind logins instead of the token. Default none.
    #[serde(default)]
    pub console_users: Option<PathBuf>,
    /// Mark the console's session cookie `Secure`: set it when a TLS-terminating web server
    /// is in front of the listener (browsers then send the cookie over HTTPS only). Default
    /// false.
    #[serde(default)]
    pub console_secure_cookie: bool,
    /// Host names (as in the `Host` field, the port aside) the listener answers to besides IP
    /// literals and `localhost`: the public name of a web server in front. Any other `Host`
    /// gets 421, so a page of another site whose name resolves to the listener (DNS rebinding)
    /// reaches nothing. Default none.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Addresses of a web server in front of the listener: exempt from the per-address limits,
    /// and the client is the address its `X-Forwarded-For` names last (for the anonymous
    /// share, the login throttle and the logs). Default none.
    #[serde(default)]
    pub proxies: Vec<std::net::IpAddr>,
    /// Connections at once; more wait to be accepted. Default 256.
    #[serde(default = "admin_connections")]
    pub max_connections: usize,
    /// Requests without the bearer token (the console, the chain viewer) served at once; one
    /// more gets 503 at once. Keep it below `max_connections`: the rest is the token
    /// holder's. Default 32.
    #[serde(default = "admin_anonymous")]
    pub anonymous_requests: usize,
    /// Requests without the bearer token served at once for one client address (503
    /// beyond). Default 4.
    #[serde(default = "admin_anonymous_per_ip")]
    pub anonymous_requests_per_ip: usize,
    /// Seconds a request without the bearer token may take to send its body (408 beyond).
    /// Default 30.
    #[serde(default = "admin_body_timeout")]
    pub body_timeout_secs: u64,
    /// Bytes per second every request body must average once `http_header_timeout_secs`
    /// have passed (408 below). Default 1024.
    #[serde(default = "admin_min_body_rate")]
    pub min_body_rate: u64,
    /// Failed console logins from one client address before it must wait (429); each
    /// further failure doubles the wait, from 1 s up to `login_lockout_max_secs`. Default 5.
    #[serde(default = "admin_login_failures_per_address")]
    pub login_failures_per_address: u32,
    /// Failed console logins for one name, from anywhere, before logins for it must wait, as
    /// for an address. Default 10.
    #[serde(default = "admin_login_failures_per_name")]
    pub login_failures_per_name: u32,
    /// The longest wait after failed console logins; an address or name with no failure for
    /// this long starts afresh. Default 900.
    #[serde(default = "admin_login_lockout_max")]
    pub login_lockout_max_secs: u64,
}

/// The body rate the HTTP listeners require by default, in bytes per second.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;

fn admin_connections() -> usize {
    256
}
fn admin_anonymous() -> usize {
    32
}
fn admin_anonymous_per_ip() -> usize {
    4
}
fn admin_body_timeout() -> u64 {
    30
}
fn admin_min_body_rate() -> u64 {
    DEFAULT_MIN_BODY_RATE
}
fn admin_login_failures_per_address() -> u32 {
    5
}
fn admin_login_failures_per_name() -> u32 {
    10
}
fn admin_login_lockout_max() -> u64 {
    900
}

impl AdminConfig {
    /// No limit of 0, and room left for the token holder beside the anonymous share.
    fn check(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        at_least_one(
            path,
            text,
            &[
                ("max_connections", self.max_connections as u64),
                ("anonymous_requests", self.anonymous_requests as u64),
                (
                    "anonymous_requests_per_ip",
                    self.anonymous_requests_per_ip as u64,
                ),
                ("body_timeout_secs", self.body_timeout_secs),
                ("min_body_rate", self.min_body_rate),
                (
                    "login_failures_per_address",
                    u64::from(self.login_failures_per_address),
                ),
                (
                    "login_failures_per_name",
                    u64::from(self.login_failures_per_name),
                ),
                ("login_lockout_max_secs", self.login_lockout_max_secs),
            ],
        )?;
        if self.anonymous_requests >= self.max_connections {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "anonymous_requests"),
                "[admin] anonymous_requests must be below max_connections, or requests without the token could take every connection",
            ));
        }
        Ok(())
    }
}

/// What one check of the ARC chain viewer may cost: anyone who reaches the admin listener can
/// paste a message, and each signature in it names a DNS name of the paster's choosing. A
/// pasted message is also held to `[limits]`' `max_header_fields` and `max_header_bytes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewerConfig {
    /// Messages checked at once; more get 503 with Retry-After at once. Default 2.
    pub checks_at_once: usize,
    /// DNS questions one check may ask; the rest are not sent and the page says "lookup budget
    /// exhausted". Default 50.
    pub lookups_per_check: usize,
    /// DNS questions the checks of one client address (one /64 for IPv6) may ask per minute.
    /// Default 300.
    pub lookups_per_client_minute: usize,
    /// Seconds all of one check's DNS questions may take together. Default 10.
    pub dns_secs: u64,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            checks_at_once: 2,
            lookups_per_check: 50,
            lookups_per_client_minute: 300,
            dns_secs: 10,
        }
    }
}

/// Certificate chain and private key files (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// DNS settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Nameservers as `host:port`; empty means `/etc/resolv.conf`. Default empty.
    pub nameservers: Vec<SocketAddr>,
    /// Seconds before a query counts as a temporary failure. Default 5.
    pub timeout_secs: u64,
    /// Seconds a DKIM or ARC key whose lookup failed temporarily (no answer, SERVFAIL) is not
    /// asked again: meanwhile it is a temporary error at once, so forged posts signed with a
    /// silent key cost one timeout, not one each. 0 asks every time. Default 60.
    pub silent_key_secs: u64,
    /// Least seconds a "no such name" or "no such record" answer is kept in the cache, when
    /// the zone's SOA minimum asks for less or the answer has no SOA. Default 30.
    pub negative_min_secs: u64,
    /// Most seconds such an answer is kept, whatever the zone's SOA says. Default 3600.
    pub negative_max_secs: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout_secs: 5,
            silent_key_secs: 60,
            negative_min_secs: 30,
            negative_max_secs: 3600,
        }
    }
}

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted, in bytes (552 beyond). Default 25 MiB.
    pub max_message_size: usize,
    /// Recipients per transaction (452 beyond, naming the limit). Default 50, as Forward Email
    /// allows.
    pub max_recipients: usize,
    /// Concurrent connections (421 beyond). Default 2000.
    pub max_connections: usize,
    /// Longest line inside a message, in bytes. Default 65536.
    pub max_line_length: usize,
    /// Seconds a client may take to send a command. Default 300.
    pub command_timeout_secs: u64,
    /// Seconds a client may pause while sending message data. Default 300.
    pub data_timeout_secs: u64,
    /// Errors (bad commands, refused recipients) before the session is closed with 421. Default 20.
    pub max_errors: usize,
    /// Header fields a message may have (552 beyond, before anything parses them). Default 1000.
    pub max_header_fields: usize,
    /// Bytes a message's header section may take (552 beyond). Default 1 MiB.
    pub max_header_bytes: usize,
    /// SMTP sessions at once from one client address (421 beyond; LMTP is not limited, its
    /// one client is the local MTA); an IPv6 client counts by its /64, which one host or
    /// site usually holds whole. Default 50.
    pub max_connections_per_ip: usize,
    /// Seconds a session may last in all, however busy (then it is closed). Default 3600.
    pub max_session_secs: u64,
    /// Bytes per second message data must keep up: each read inside DATA or BDAT earns
    /// `bytes / min_data_rate` seconds of stall credit (capped by `data_stall_secs`, shared by
    /// all of a transaction's BDAT chunks); a client whose credit runs out gets 421. Default
    /// 500, as Postfix's `smtpd_min_data_rate`.
    pub min_data_rate: u64,
    /// Seconds of credit a DATA or BDAT transfer may stall for, however fast it was before:
    /// each read spends the time it waited and earns `bytes / min_data_rate` seconds, up to
    /// this cap (and at most `data_timeout_secs`); at zero the client gets 421. So a fast
    /// start buys no long stall, and a byte at a time cannot keep a transfer open. Default 30.
    pub data_stall_secs: u64,
    /// Bytes all message transfers in progress may hold in `STATE_DIR/incoming/` together
    /// (what is over 1 MiB of each waits there); the transfer that would pass it is refused
    /// with 452 4.3.1 and its file removed, the others go on. At least `max_message_size`.
    /// Default 512 MiB.
    pub incoming_quota: u64,
    /// Seconds a command line may take from its first byte to its line end (421 beyond), so
    /// a command cannot be sent a byte at a time. Default 30.
    pub command_line_secs: u64,
    /// Seconds a session may spend on commands (waiting included) before the data of its next
    /// message starts: from the greeting, and again after each accepted message; time inside
    /// DATA or BDAT does not count (421 beyond). Default 120.
    pub command_phase_secs: u64,
    /// Connections at once from one client address to each HTTP listener (one-click, admin);
    /// more are closed at once. Default 16.
    pub http_connections_per_ip: usize,
    /// Seconds an HTTP client may take to send a request's header fields (also idle time
    /// between requests on one connection). Default 5.
    pub http_header_timeout_secs: u64,
    /// `Received` fields a message to a list may carry (`554 5.4.6` beyond: a mail loop, as
    /// Forward Email counts). Default 25.
    pub max_received: usize,
    /// Messages one client address may send in an hour, counted in the store (shared by the
    /// nodes of a PostgreSQL store); beyond, `452 4.7.1`. Behind a relay this counts the
    /// client the relay names (XCLIENT/XFORWARD), else the relay itself. 0 (the default): no
    /// limit.
    pub max_messages_per_client_per_hour: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 50,
            max_connections: 2000,
            max_line_length: 65536,
            command_timeout_secs: 300,
            data_timeout_secs: 300,
            max_errors: 20,
            max_header_fields: 1000,
            max_header_bytes: 1024 * 1024,
            max_connections_per_ip: 50,
            max_session_secs: 3600,
            min_data_rate: 500,
            data_stall_secs: 30,
            incoming_quota: 512 * 1024 * 1024,
            command_line_secs: 30,
            command_phase_secs: 120,
            http_connections_per_ip: 16,
            http_header_timeout_secs: 5,
            max_received: 25,
            max_messages_per_client_per_hour: 0,
        }
    }
}

/// How mail leaves arclist.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `host:port` of a smarthost; none means direct delivery by MX. Default none.
    pub smarthost: Option<String>,
    /// The port direct delivery connects to. Default 25; other values are for test beds.
    pub port: u16,
    /// Seconds allowed for each step of a delivery (connect, each reply). Default 60.
    pub timeout_secs: u64,
    /// How to secure the smarthost connection. Default `opportunistic`.
    pub smarthost_tls: SmarthostTls,
    /// A PEM file of CA certificates that the smarthost's certificate must chain to, for
    /// `starttls` and `implicit`. Default: the system's bundle (`/etc/ssl/certs`).
    pub smarthost_ca: Option<PathBuf>,
    /// The user name for SMTP AUTH (PLAIN or LOGIN) at the smarthost. Default none.
    pub smarthost_user: Option<String>,
    /// A file holding the smarthost password (first line), kept out of the main config so the
    /// config can be world-readable. Required with `smarthost_user`.
    pub smarthost_password_file: Option<PathBuf>,
    /// Connections open at once, over all destinations (Postfix: `default_process_limit`).
    /// Default 100.
    pub max_connections: usize,
    /// Connections open at once to one destination domain (Postfix:
    /// `default_destination_concurrency_limit`). Default 10.
    pub per_destination: usize,
    /// Recipients per transaction when every recipient gets the same bytes (VERP off).
    /// Default 50.
    pub recipients_per_transaction: usize,
    /// Recipients one delivery round claims, sends to and records at a time: a larger post
    /// is delivered round after round, so a million-member list is held in memory, and its
    /// records are written, a round at a time. Default 10000.
    pub recipients_per_round: usize,
    /// Seconds an idle connection is kept for the next message to the same host. Default 5;
    /// at most half a second on a shared store, where a kept connection keeps its
    /// destination's slot from the other nodes.
    pub connection_reuse_secs: u64,
    /// Seconds to wait after each temporary failure, in order; the last repeats. Each wait
    /// gets up to a tenth more, fixed per address. Default 60, 300, 900, 1800, 3600, 7200,
    /// 14400.
    pub retry_after_secs: Vec<u64>,
    /// Hours a recipient may stay deferred before it counts as bounced. Default 120 (five
    /// days, as Postfix's `maximal_queue_lifetime`).
    pub give_up_after_hours: u64,
    /// The local IPv4 address mail leaves from, on a host with several (Postfix:
    /// `smtp_bind_address`). Default none: the system chooses.
    pub bind_address: Option<std::net::Ipv4Addr>,
    /// The local IPv6 address mail leaves from (Postfix: `smtp_bind_address6`). Default none.
    pub bind_address6: Option<std::net::Ipv6Addr>,
    /// The local IPv4 address forwarded mail (and forwarding's DSNs and SRS returns) leaves
    /// from, when it is not `bind_address`: forwarding's reputation kept apart from the
    /// lists'. Default: `bind_address`.
    pub forward_bind_address: Option<std::net::Ipv4Addr>,
    /// The same for IPv6. Default: `bind_address6`.
    pub forward_bind_address6: Option<std::net::Ipv6Addr>,
}

/// How the connection to a smarthost is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmarthostTls {
    /// STARTTLS when offered, any certificate; plain text otherwise (direct delivery's rule).
    #[default]
    Opportunistic,
    /// STARTTLS required, and the certificate must be valid for the smarthost's name.
    Starttls,
    /// TLS from the first byte (port 465), the certificate valid for the smarthost's name.
    Implicit,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            smarthost: None,
            port: 25,
            timeout_secs: 60,
            smarthost_tls: SmarthostTls::Opportunistic,
            smarthost_ca: None,
            smarthost_user: None,
            smarthost_password_file: None,
            max_connections: 100,
            per_destination: 10,
            recipients_per_transaction: 50,
            recipients_per_round: 10_000,
            connection_reuse_secs: 5,
            retry_after_secs: vec![60, 300, 900, 1800, 3600, 7200, 14_400],
            give_up_after_hours: 120,
            bind_address: None,
            bind_address6: None,
            forward_bind_address: None,
            forward_bind_address6: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".into(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            lmtp_listen: Vec::new(),
            socketmap_listen: None,
            store: PathBuf::from("var/arclist.redb"),
            cluster: ClusterConfig::default(),
            state_dir: PathBuf::new(),
            lists_dir: PathBuf::from("lists"),
            forwards_dir: None,
            log_format: LogFormat::Text,
            tls: None,
            dns: DnsConfig::default(),
            limits: Limits::default(),
            delivery: DeliveryConfig::default(),
            http: None,
            admin: None,
            retention: RetentionConfig::default(),
            pipeline: PipelineConfig::default(),
            trusted_relays: super::Cidrs::default(),
            dmarc_reports: None,
            send_dmarc_reports: false,
            filter: super::FilterConfig::default(),
            file: None,
        }
    }
}

impl ServerConfig {
    /// Parses the server file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: ServerConfig =
            toml::from_str(text).map_err(|e| ConfigError::at(path, text, e.span(), e.message()))?;
        if cfg.hostname.is_empty() || cfg.hostname.contains(char::is_whitespace) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "hostname"),
                "hostname must be a host name",
            ));
        }
        if let Some(tls) = &cfg.tls {
            for (field, file) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                let full = path.parent().unwrap_or(Path::new("")).join(file);
                if !full.is_file() {
                    return Err(ConfigError::at(
                        path,
                        text,
                        find_key(text, field.trim_start_matches("tls.")),
                        format!("{field}: no such file {}", full.display()),
                    ));
                }
            }
        }
        let c = &cfg.cluster;
        if c.lease_secs < 3 || c.claim_batch == 0 || c.pool_size == 0 {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "cluster"),
                "cluster: lease_secs must be at least 3, claim_batch and pool_size at least 1",
            ));
        }
        let d = &cfg.delivery;
        if d.smarthost_user.is_some() {
            let problem = if d.smarthost.is_none() {
                Some("smarthost_user needs a smarthost")
            } else if d.smarthost_tls == SmarthostTls::Opportunistic {
                // A password must never cross the network in clear, nor to an unverified host.
                Some("smarthost_user needs smarthost_tls = \"starttls\" or \"implicit\"")
            } else if d.smarthost_password_file.is_none() {
                Some("smarthost_user needs smarthost_password_file")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, "smarthost_user"),
                    problem,
                ));
            }
        }
        if d.retry_after_secs.is_empty() || d.retry_after_secs.contains(&0) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "retry_after_secs"),
                "retry_after_secs must list at least one wait, each at least 1 second",
            ));
        }
        at_least_one(
            path,
            text,
            &[
                ("give_up_after_hours", d.give_up_after_hours as u64),
                ("max_connections", d.max_connections as u64),
                ("per_destination", d.per_destination as u64),
                (
                    "recipients_per_transaction",
                    d.recipients_per_transaction as u64,
                ),
                ("recipients_per_round", d.recipients_per_round as u64),
            ],
        )?;
        cfg.check_lifecycle(path, text)?;
        if let Some(admin) = &cfg.admin {
            admin.check(path, text)?;
        }
        Ok(cfg)
    }

    /// The `[limits]`, `[retention]` and `[pipeline]` sections: no limit of 0, which would
    /// refuse everything or never time out.
    fn check_lifecycle(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let l = &self.limits;
        at_least_one(
            path,
            text,
            &[
                ("max_message_size", l.max_message_size as u64),
                ("max_recipients", l.max_recipients as u64),
                ("max_connections", l.max_connections as u64),
                ("max_line_length", l.max_line_length as u64),
                ("command_timeout_secs", l.command_timeout_secs),
                ("data_timeout_secs", l.data_timeout_secs),
                ("max_errors", l.max_errors as u64),
                ("max_header_fields", l.max_header_fields as u64),
                ("max_header_bytes", l.max_header_bytes as u64),
                ("max_connections_per_ip", l.max_connections_per_ip as u64),
                ("max_session_secs", l.max_session_secs),
                ("min_data_rate", l.min_data_rate),
                ("data_stall_secs", l.data_stall_secs),
                ("command_line_secs", l.command_line_secs),
                ("command_phase_secs", l.command_phase_secs),
                ("http_connections_per_ip", l.http_connections_per_ip as u64),
                ("http_header_timeout_secs", l.http_header_timeout_secs),
            ],
        )?;
        if l.incoming_quota < l.max_message_size as u64 {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "incoming_quota"),
                format!(
                    "incoming_quota ({}) must be at least max_message_size ({}), or no message that large could arrive",
                    l.incoming_quota, l.max_message_size
                ),
            ));
        }
        if let Some(local) = &self.dmarc_reports
            && (local.is_empty()
                || !local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)))
        {
            return Err(ConfigError::at(
                path,
                text,
                None,
                format!(
                    "dmarc_reports = {local:?}: a local part (letters, digits, - . _), not an address"
                ),
            ));
        }
        let r = &self.retention;
        for (key, days) in [
            ("records_days", r.records_days),
            ("raw_days", r.raw_days),
            ("duplicates_days", r.duplicates_days),
        ] {
            if !days.is_finite() || days < 0.0 {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, key),
                    format!("{key} must be a number of days, 0 or more"),
                ));
            }
        }
        at_least_one(
            path,
            text,
            &[
                ("prune_every_secs", r.prune_every_secs),
                ("concurrency", self.pipeline.concurrency as u64),
                ("hold_after_hours", self.pipeline.hold_after_hours),
            ],
        )?;
        Ok(())
    }

    /// The store's PostgreSQL URL, when `store` is one rather than a file.
    pub fn store_url(&self) -> Option<&str> {
        let s = self.store.to_str()?;
        (s.starts_with("postgresql://") || s.starts_with("postgres://")).then_some(s)
    }

    /// The store for messages and logs: the file, or the URL without its password.
    pub fn store_display(&self) -> String {
        match self.store_url() {
            Some(url) => without_password(url),
            None => self.store.display().to_string(),
        }
    }

    /// Reads the server file `path`, its relative paths resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = super::read_bounded(path)
            .map_err(|e| ConfigError::at(path, "", None, format!("cannot read: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut server = ServerConfig::parse(path, &text)?.resolved(&base);
        server.file = Some(path.to_path_buf());
        Ok(server)
    }

    /// Resolves relative paths against `base`.
    pub fn resolved(mut self, base: &Path) -> Self {
        let join = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        if self.store_url().is_none() {
            self.store = join(&self.store);
        }
        self.state_dir = match (self.state_dir.as_os_str().is_empty(), self.store_url()) {
            (false, _) => join(&self.state_dir),
            (true, Some(_)) => base.join("var"),
            (true, None) => self
                .store
                .parent()
                .map_or_else(|| base.to_path_buf(), Path::to_path_buf),
        };
        self.lists_dir = join(&self.lists_dir);
        self.forwards_dir = self.forwards_dir.as_ref().map(join);
        if let Some(admin) = &mut self.admin {
            admin.token_file = join(&admin.token_file);
            admin.console_users = admin.console_users.as_ref().map(join);
        }
        if let Some(tls) = &mut self.tls {
            tls.cert = join(&tls.cert);
            tls.key = join(&tls.key);
        }
        self.delivery.smarthost_ca = self.delivery.smarthost_ca.as_ref().map(join);
        self.delivery.smarthost_password_file =
            self.delivery.smarthost_password_file.as_ref().map(join);
        self
    }
}

/// The byte range of `key =` in `text`, to point at a line.
pub(crate) fn find_key(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    text.match_indices(key)
        .find(|(i, _)| {
            let before_ok =
                *i == 0 || text.as_bytes()[i - 1] == b'\n' || text.as_bytes()[i - 1] == b' ';
            let after = text[i + key.len()..].trim_start();
            before_ok && after.starts_with('=')
        })
        .map(|(i, _)| i..i + key.len())
}
