//! What went wrong in delivery, by kind: a connection that could not be made ready or broke
//! (each of these defers the recipients it concerns, with the host's address in front), a
//! route that cannot be used, and the queue that could not be read or settled.

use super::connect::Reply;
use std::path::PathBuf;

/// Why delivery could not do something. Transport failures carry no host: the caller puts the
/// endpoint's address in front of the text it records for each recipient.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The TCP connection was not made within the step's time.
    #[error("connection timed out")]
    ConnectTimeout,
    /// The TCP connection was refused or failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The server said nothing within the step's time.
    #[error("timed out waiting for the server")]
    ReadTimeout,
    /// The server did not take our bytes within the step's time.
    #[error("timed out sending")]
    SendTimeout,
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(#[source] std::io::Error),
    /// The server closed the connection in the middle of a reply.
    #[error("the server closed the connection")]
    Closed,
    /// A reply line without a three-digit code.
    #[error("malformed reply {0:?}")]
    MalformedReply(String),
    /// The smarthost's name is not one a certificate can carry.
    #[error("smarthost name {host:?}: {source}")]
    HostName {
        /// The name as configured.
        host: String,
        /// Why it is not a DNS name.
        #[source]
        source: tokio_rustls::rustls::pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake did not finish within the step's time.
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    /// The TLS handshake failed (a certificate that does not verify, a protocol error).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    /// The TLS client could not be set up.
    #[error("TLS: {0}")]
    TlsSetup(#[source] tokio_rustls::rustls::Error),
    /// The smarthost's CA bundle could not be used.
    #[error(transparent)]
    CaBundle(#[from] crate::base::tls_roots::TlsRootsError),
    /// The smarthost must be reached over STARTTLS and does not offer it.
    #[error("STARTTLS is required for this smarthost and it does not offer it")]
    StartTlsNotOffered,
    /// The server offered STARTTLS and then refused it.
    #[error("STARTTLS refused: {0}")]
    StartTlsRefused(Reply),
    /// The smarthost has credentials but the connection is not encrypted.
    #[error("refusing to send the smarthost password without TLS")]
    PasswordWithoutTls,
    /// The smarthost refused to start AUTH LOGIN.
    #[error("smarthost refused AUTH LOGIN: {0}")]
    AuthLoginRefused(Reply),
    /// The smarthost refused the user name in AUTH LOGIN.
    #[error("smarthost refused the user name: {0}")]
    UserRefused(Reply),
    /// The smarthost offers no mechanism arclist speaks.
    #[error("the smarthost offers neither AUTH PLAIN nor AUTH LOGIN")]
    NoAuthMechanism,
    /// The smarthost refused the credentials.
    #[error("smarthost refused authentication for {user}: {reply}")]
    AuthRefused {
        /// The configured user name.
        user: String,
        /// The server's reply.
        reply: Reply,
    },
    /// The server refused to reset a transaction left unfinished.
    #[error("RSET refused: {0}")]
    RsetRefused(Reply),
    /// The connection failed after the message data was sent: the server may have the
    /// message.
    #[error("{0} after the message data")]
    AfterData(#[source] Box<DeliveryError>),
    /// The smarthost password file could not be read.
    #[error("smarthost password file {}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The smarthost password file's first line is empty.
    #[error("smarthost password file {} is empty", path.display())]
    EmptyPassword {
        /// The file.
        path: PathBuf,
    },
    /// The smarthost setting has no `:port`.
    #[error("smarthost {target:?} has no port")]
    NoPort {
        /// The setting.
        target: String,
    },
    /// The smarthost setting's port is not a number.
    #[error("smarthost {target:?}: bad port")]
    BadPort {
        /// The setting.
        target: String,
    },
    /// The smarthost's addresses could not be looked up.
    #[error("smarthost {host}: {source}")]
    SmarthostDns {
        /// The smarthost's name.
        host: String,
        /// The DNS failure.
        #[source]
        source: crate::auth::dns::DnsError,
    },
    /// A destination's MX or address records could not be looked up now.
    #[error(transparent)]
    Dns(#[from] crate::auth::dns::DnsError),
    /// The queue could not be read or settled.
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    /// A post's recipients are due but its signed copy is not in the queue.
    #[error("the signed copy of post {id} is missing from the queue")]
    MissingCopy {
        /// The post's spool id.
        id: u64,
    },
    /// The owner of the post could not make what its recipients need.
    #[error(transparent)]
    Hook(#[from] super::owner::HookError),
    /// A blocking task of the round panicked or was cancelled by a stop.
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
