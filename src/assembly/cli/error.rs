//! What went wrong in a command, by kind: the lower layers' errors as they are, and the
//! CLI's own (its arguments, standard output, the running server's admin listener). The
//! message goes to standard error once, in `cli::main`, the one edge where it becomes text.

use std::path::PathBuf;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Standard output was closed by its reader (`| head`): nothing is left to say.
    #[error("standard output closed")]
    OutputClosed,
    /// Standard output refused the text.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] std::io::Error),
    /// A message file named on the command line could not be read.
    #[error("cannot read message {}: {source}", path.display())]
    Message {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file named on the command line could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `console-user` needs the server file's `[admin] console_users`.
    #[error("the server file sets no [admin] console_users file")]
    NoConsoleUsers,
    /// A console user name with characters the users file cannot hold.
    #[error("{name:?}: use letters, digits, '.', '-' and '_'")]
    UserName {
        /// The name given.
        name: String,
    },
    /// A list named on the command line that the server does not have.
    #[error("{list} is not a list of this server")]
    UnknownList {
        /// The list given.
        list: String,
    },
    /// A console password under the minimum length.
    #[error("the password needs at least 12 characters (read from standard input)")]
    ShortPassword,
    /// `check-dns --only` names neither a list nor a forwarding domain.
    #[error("no list or forwarding domain {only} in the configuration")]
    NoSuchTarget {
        /// The name given.
        only: String,
    },
    /// The password could not be read from standard input.
    #[error("cannot read the password: {source}")]
    Password {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server file or a list file has an error.
    #[error(transparent)]
    Config(#[from] crate::base::config::ConfigError),
    /// The admin token file does not load.
    #[error(transparent)]
    Token(#[from] crate::base::config::TokenError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    /// The store is held by a running server without an admin listener to ask instead.
    #[error(
        "{0}: arclist serve is running, but answers neither on its local admin socket (admin.sock in its state_dir) nor on an [admin] listener (docs/admin-api.md)"
    )]
    NoAdminListener(#[source] crate::state::store::StoreError),
    /// The manual pages or completions could not be written.
    #[error("cannot write to {}: {source}", dir.display())]
    Generate {
        /// The folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// What `serve` needs is not all there (`check-config` and `serve` say the same).
    #[error("{} problem(s) would stop arclist serve:\n  {}", problems.len(), problems.join("\n  "))]
    Preflight {
        /// One line per problem.
        problems: Vec<String>,
    },
    /// The admin service (in process) refused or failed.
    #[error(transparent)]
    Admin(#[from] crate::surfaces::admin::AdminError),
    /// A server runs, but its local admin socket lets us not in (not in the service user's
    /// group), and the server file names no `[admin]` listener to ask instead.
    #[error(
        "arclist serve is running, but its local admin socket {} refuses this user ({source}): run the command as the service user, root or a member of its group",
        socket.display()
    )]
    SocketRefused {
        /// The socket.
        socket: PathBuf,
        /// The connection's error.
        #[source]
        source: std::io::Error,
    },
    /// The running server's admin API could not be reached or broke off.
    #[error("the store is held by a running server, but {endpoint} does not answer: {source}")]
    Unreachable {
        /// The local admin socket or the admin listener.
        endpoint: String,
        /// The connection's or HTTP's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request to the admin listener could not be made.
    #[error("cannot make the request: {0}")]
    Request(#[source] hyper::http::Error),
    /// The admin listener refused the token.
    #[error("{endpoint} refused the token in the server file's token_file")]
    TokenRefused {
        /// The admin listener.
        endpoint: String,
    },
    /// The admin API took too long.
    #[error("{endpoint} did not answer within 10 minutes")]
    ApiTimeout {
        /// The local admin socket or the admin listener.
        endpoint: String,
    },
    /// The running server's admin API refused the request; its words, as its HTTP body says.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's error text.
        message: String,
    },
    /// The admin API answered something that is not the expected JSON.
    #[error("unexpected answer from the API: {0}")]
    Answer(#[source] serde_json::Error),
    /// A line of a members file was refused.
    #[error("{}:{line}:{rest}", file.display())]
    ImportLine {
        /// The members file.
        file: PathBuf,
        /// The line number.
        line: String,
        /// What is wrong with it.
        rest: String,
    },
    /// A members file was refused as a whole.
    #[error("{}: {source}", file.display())]
    Import {
        /// The members file.
        file: PathBuf,
        /// Why.
        #[source]
        source: Box<CliError>,
    },
    /// JSON output could not be made.
    #[error("cannot write JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] crate::assembly::server::StartError),
    /// A signal could not be watched.
    #[error("cannot watch {signal}: {source}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A signing key does not load.
    #[error("{owner}: {source}")]
    Key {
        /// `list ADDRESS`, `forwarding DOMAIN`, or the key file.
        owner: String,
        /// Why.
        #[source]
        source: crate::auth::signing_key::KeyLoadError,
    },
    /// The key `keygen --show` was asked for does not load.
    #[error("{}: {source} (make one with arclist keygen)", path.display())]
    NoKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::auth::signing_key::KeyLoadError,
    },
    /// A forwarding domain's SRS secret does not load.
    #[error(transparent)]
    Forward(#[from] crate::stages::forward::ForwardError),
    /// The spool has no message with this id.
    #[error("no spooled message {id}")]
    NoSpooled {
        /// The id asked for.
        id: u64,
    },
    /// The console's users file could not be read or written.
    #[error(transparent)]
    Users(#[from] crate::surfaces::web::console::users::UsersError),
    /// A new key file could not be written.
    #[error(transparent)]
    SecretFile(#[from] crate::base::config::PrivateFileError),
    /// The engine refused (signing, a DNS record, the resolver): its words.
    #[error("{0}")]
    Engine(String),
    /// A zone file does not load.
    #[error(transparent)]
    Zone(#[from] crate::auth::dns::zone::ZoneError),
    /// The loopback DNS server could not start.
    #[error("cannot start loopback DNS: {0}")]
    LoopbackDns(#[source] std::io::Error),
    /// A DNS lookup failed.
    #[error("cannot tell which address mail leaves from ({host}: {source}); pass --ip")]
    Outbound {
        /// The server's host name.
        host: String,
        /// Why.
        #[source]
        source: crate::auth::dns::DnsError,
    },
    /// An ARC set could not be added.
    #[error(transparent)]
    Seal(#[from] crate::auth::arc::SealRefusal),
    /// A `--since` that does not parse.
    #[error(transparent)]
    Duration(#[from] crate::surfaces::operate::report::DurationError),
    /// The conformance suite could not be run.
    #[error(transparent)]
    Conformance(#[from] arclist_testbed::conformance::SuiteError),
    /// The demo went wrong.
    #[error(transparent)]
    Demo(#[from] super::demo::DemoError),
    /// The arguments ask for what cannot be done as given (which argument, and why).
    #[error("{0}")]
    Usage(String),
}
