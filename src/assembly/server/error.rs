//! Why a server could not start (or a reload could not load what the files name): each
//! variant names the file, list, domain or address at fault, through its source.

use std::path::PathBuf;

/// Why the assembly failed; whatever had started is stopped again.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The spam filter's URL is not one arclist can use.
    #[error(transparent)]
    Filter(#[from] crate::stages::filter::rspamd::EndpointError),
    /// A list's key does not load, or its members could not be seeded.
    #[error(transparent)]
    List(#[from] crate::stages::list::ListError),
    /// A forwarding domain's key or SRS secret does not load.
    #[error(transparent)]
    Forward(#[from] crate::stages::forward::ForwardError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    /// A key asked for with `create_key` could not be generated.
    #[error("{owner}: cannot generate a signing key: {source}")]
    KeyGen {
        /// The list or forwarding domain.
        owner: String,
        /// Why.
        #[source]
        source: crate::auth::signing_key::KeyLoadError,
    },
    /// A new key's DNS record could not be made (the engine says why in words).
    #[error("{owner}: {reason}")]
    DnsRecord {
        /// The list or forwarding domain.
        owner: String,
        /// The engine's words.
        reason: String,
    },
    /// The system gave no random bytes for a new SRS secret.
    #[error("no randomness for the SRS secret")]
    Randomness,
    /// A new key or secret file could not be written.
    #[error(transparent)]
    SecretFile(#[from] crate::base::config::PrivateFileError),
    /// The DNS resolver or SPF evaluator could not be set up (the engine says why in words).
    #[error("{0}")]
    Dns(String),
    /// The smarthost or delivery settings cannot be used.
    #[error(transparent)]
    Delivery(#[from] crate::stages::delivery::DeliveryError),
    /// The SMTP listener's certificate or key does not load.
    #[error(transparent)]
    Tls(#[from] crate::stages::smtp::tls::TlsError),
    /// A listener could not bind (the error names the address).
    #[error("{0}")]
    Listen(#[source] std::io::Error),
    /// The console's users file does not load.
    #[error(transparent)]
    Console(#[from] crate::surfaces::web::console::users::UsersError),
    /// The admin token file does not load.
    #[error(transparent)]
    Token(#[from] crate::base::config::TokenError),
    /// The admin listener's address could not be left for the CLI.
    #[error("cannot write {}: {source}", path.display())]
    AddrFile {
        /// The file in the state folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
