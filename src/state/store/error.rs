//! What went wrong in the store, by kind, so callers decide on the kind and not on the text: the
//! pipeline backs off on a busy or unreachable database and sets aside a message whose record
//! does not decode; the CLI asks the running server when the embedded file is already open.
//!
//! Inside the backends a failure is a [`Fault`] (a kind and the driver's words); it becomes a
//! [`StoreError`] at the backend's edge, where the store's path or URL is added, since an
//! operator with two stores must see which one failed.

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The database cannot be reached or used now: no connection, a runtime or writer that
    /// stopped, a file closed after an I/O error and not reopened yet.
    Unavailable,
    /// The database is there but busy: a pool timeout, a serialization failure or deadlock,
    /// a lock held by someone else for a moment.
    Busy,
    /// Another process (a running server) has the embedded file open.
    AlreadyOpen,
    /// The write contradicts what is stored (a unique or foreign key violation).
    Conflict,
    /// Something the operation needs is not there.
    NotFound,
    /// A record that does not decode: stored JSON that is not a record, a bad key, a damaged
    /// file.
    Corrupt,
    /// The disk refused: full, no permission, a read or write error.
    Io,
    /// Anything else: a driver's failure that says nothing more, a bug.
    Other,
}

impl ErrorKind {
    /// Whether trying again later may succeed without anyone changing the stored data: the
    /// store's condition failed, not the record being worked on.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Busy | ErrorKind::AlreadyOpen | ErrorKind::Io
        )
    }
}

/// Why the store could not do something, by kind, with the store it concerns (the file's path
/// or the database URL without its password) and the driver's words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// See [`ErrorKind::Unavailable`].
    #[error("store {store}: {message}")]
    Unavailable {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::Busy`].
    #[error("store {store}: {message}")]
    Busy {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::AlreadyOpen`].
    #[error("store {store}: {message}")]
    AlreadyOpen {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::Conflict`].
    #[error("store {store}: {message}")]
    Conflict {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::NotFound`].
    #[error("store {store}: {message}")]
    NotFound {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::Corrupt`].
    #[error("store {store}: {message}")]
    Corrupt {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::Io`].
    #[error("store {store}: {message}")]
    Io {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
    /// See [`ErrorKind::Other`].
    #[error("store {store}: {message}")]
    Other {
        /// The store's path or URL.
        store: String,
        /// What failed.
        message: String,
    },
}

impl StoreError {
    /// An error of `kind` in `store` (its path or URL without the password).
    pub fn new(kind: ErrorKind, store: impl Into<String>, message: impl Into<String>) -> Self {
        let (store, message) = (store.into(), message.into());
        match kind {
            ErrorKind::Unavailable => StoreError::Unavailable { store, message },
            ErrorKind::Busy => StoreError::Busy { store, message },
            ErrorKind::AlreadyOpen => StoreError::AlreadyOpen { store, message },
            ErrorKind::Conflict => StoreError::Conflict { store, message },
            ErrorKind::NotFound => StoreError::NotFound { store, message },
            ErrorKind::Corrupt => StoreError::Corrupt { store, message },
            ErrorKind::Io => StoreError::Io { store, message },
            ErrorKind::Other => StoreError::Other { store, message },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Busy { .. } => ErrorKind::Busy,
            StoreError::AlreadyOpen { .. } => ErrorKind::AlreadyOpen,
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::Other { .. } => ErrorKind::Other,
        }
    }

    /// Whether trying again later may succeed (see [`ErrorKind::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// The store's path, or its URL without the password.
    pub fn store(&self) -> &str {
        self.parts().0
    }

    /// What failed, without the store.
    pub fn message(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (&str, &str) {
        match self {
            StoreError::Unavailable { store, message }
            | StoreError::Busy { store, message }
            | StoreError::AlreadyOpen { store, message }
            | StoreError::Conflict { store, message }
            | StoreError::NotFound { store, message }
            | StoreError::Corrupt { store, message }
            | StoreError::Io { store, message }
            | StoreError::Other { store, message } => (store, message),
        }
    }
}

/// A failure inside a backend, before the store's path or URL is added ([`Fault::at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// What kind of failure.
    pub(crate) kind: ErrorKind,
    /// The driver's words, with what was being done.
    pub(crate) message: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Fault {
    /// A fault of `kind`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Fault {
            kind,
            message: message.into(),
        }
    }

    /// A record that does not decode.
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// The store cannot be used now.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The store is busy (a lock, a timeout).
    pub(crate) fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy, message)
    }

    /// A failure of no other kind.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// The same fault, its message prefixed with what was being done.
    pub(crate) fn context(self, what: impl std::fmt::Display) -> Self {
        Fault {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }

    /// The error as callers see it: in `store` (a path or URL without the password).
    pub(crate) fn at(self, store: impl Into<String>) -> StoreError {
        StoreError::new(self.kind, store, self.message)
    }
}

/// A stored record that does not decode; serializing our own records does not fail.
impl From<serde_json::Error> for Fault {
    fn from(e: serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Io => Fault::new(ErrorKind::Io, e.to_string()),
            _ => Fault::corrupt(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        Fault::new(io_kind(&e), e.to_string())
    }
}

/// The kind of an I/O error: a lock held by another process is busy, damaged data corrupt,
/// the rest the disk's.
fn io_kind(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match e.kind() {
        Io::WouldBlock | Io::Interrupted | Io::TimedOut => ErrorKind::Busy,
        Io::InvalidData | Io::UnexpectedEof => ErrorKind::Corrupt,
        Io::NotFound => ErrorKind::NotFound,
        Io::ConnectionRefused | Io::ConnectionReset | Io::ConnectionAborted | Io::NotConnected => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Io,
    }
}

impl From<redb::StorageError> for Fault {
    fn from(e: redb::StorageError) -> Self {
        use redb::StorageError as S;
        let kind = match &e {
            S::Corrupted(_) => ErrorKind::Corrupt,
            // Too big for this store is a property of the record: it will never fit.
            S::ValueTooLarge(_) => ErrorKind::Conflict,
            S::Io(io) => match io_kind(io) {
                ErrorKind::NotFound => ErrorKind::Io,
                kind => kind,
            },
            // The file must be closed and opened again first (see `recovery`).
            S::PreviousIo | S::DatabaseClosed => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        };
        Fault::new(kind, e.to_string())
    }
}

impl From<redb::DatabaseError> for Fault {
    fn from(e: redb::DatabaseError) -> Self {
        use redb::DatabaseError as D;
        match e {
            D::DatabaseAlreadyOpen => Fault::new(ErrorKind::AlreadyOpen, e.to_string()),
            D::TransactionInProgress => Fault::new(ErrorKind::Busy, e.to_string()),
            D::RepairAborted | D::UpgradeRequired(_) | D::LockProtocolMismatch => {
                Fault::unavailable(e.to_string())
            }
            D::Storage(s) => s.into(),
            _ => Fault::other(e.to_string()),
        }
    }
}

impl From<redb::TransactionError> for Fault {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => s.into(),
            redb::TransactionError::WouldBlock => Fault::new(ErrorKind::Busy, e.to_string()),
            _ => Fault::other(e.to_string()),
        }
    }
}

impl From<redb::TableError> for Fault {
    fn from(e: redb::TableError) -> Self {
        use redb::TableError as T;
        match e {
            T::Storage(s) => s.into(),
            // A table of another type than this arclist writes: a file it did not make.
            T::TableTypeMismatch { .. }
            | T::TableIsMultimap(_)
            | T::TableIsNotMultimap(_)
            | T::TypeDefinitionChanged { .. } => Fault::corrupt(e.to_string()),
            T::TableDoesNotExist(_) => Fault::new(ErrorKind::NotFound, e.to_string()),
            _ => Fault::other(e.to_string()),
        }
    }
}

impl From<redb::CommitError> for Fault {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => s.into(),
            _ => Fault::other(e.to_string()),
        }
    }
}

impl From<redb::SetDurabilityError> for Fault {
    fn from(e: redb::SetDurabilityError) -> Self {
        Fault::other(e.to_string())
    }
}

/// A driver error with the server's own words when it sent some, by its SQLSTATE class:
/// 08 (connection), 57P (shut down), 28 and 42501 (not allowed) unavailable; 40001 and 40P01
/// (serialization, deadlock) busy; 23 (integrity) a conflict; 53 (resources: disk full, out
/// of memory) the disk's; 22 and XX (data) corrupt.
impl From<tokio_postgres::Error> for Fault {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No answer from the server: the connection failed (I/O, TLS, authentication, a
            // timeout), except for a value that does not decode or a query that does not fit
            // its rows, which fail the same way every time.
            let text = e.to_string();
            let kind = match () {
                _ if e.is_closed() || is_io(&e) => ErrorKind::Unavailable,
                _ if text.starts_with("error deserializing column") => ErrorKind::Corrupt,
                _ if text.starts_with("error serializing parameter")
                    || text.starts_with("invalid column")
                    || text.starts_with("query returned an unexpected number")
                    || text.starts_with("expected ") =>
                {
                    ErrorKind::Other
                }
                _ => ErrorKind::Unavailable,
            };
            return Fault::new(kind, with_causes(&e));
        };
        let code = db.code().code();
        let kind = match code {
            "40001" | "40P01" | "55P03" | "57014" => ErrorKind::Busy,
            // No connection, a server shutting down, a role or database that cannot be used
            // (the operator's to fix, and no message's fault).
            c if ["08", "57P", "28", "3D", "42501"]
                .iter()
                .any(|p| c.starts_with(p)) =>
            {
                ErrorKind::Unavailable
            }
            c if c.starts_with("53") || c.starts_with("58") => ErrorKind::Io,
            c if c.starts_with("23") => ErrorKind::Conflict,
            c if c.starts_with("22") || c.starts_with("XX") => ErrorKind::Corrupt,
            c if c.starts_with("42P01") => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        };
        Fault::new(kind, format!("{code}: {}", db.message()))
    }
}

/// Whether an I/O error is somewhere in `e`'s causes.
fn is_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A pool that gives no connection: waiting for a free one means a busy database, anything
/// else (a failed or timed-out connect) one out of reach.
impl From<deadpool_postgres::PoolError> for Fault {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError as P;
        let message = format!("no database connection: {}", with_causes(&e));
        match e {
            P::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                Fault::new(ErrorKind::Busy, message)
            }
            // Whatever the driver says, without a connection the database is out of reach.
            _ => Fault::unavailable(message),
        }
    }
}

/// An error and what caused it, down the chain: "error performing TLS handshake" alone does
/// not tell an operator that the certificate's issuer is unknown.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_as_before_whatever_the_kind() {
        let e = Fault::corrupt("corrupt metadata 7: expected value").at("/var/store.redb");
        assert_eq!(
            e.to_string(),
            "store /var/store.redb: corrupt metadata 7: expected value"
        );
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(!e.is_transient());
        assert_eq!(e.store(), "/var/store.redb");
    }

    #[test]
    fn stored_json_that_does_not_decode_is_corrupt() {
        let bad = serde_json::from_str::<u32>("{").expect_err("not json");
        assert_eq!(Fault::from(bad).kind, ErrorKind::Corrupt);
    }

    #[test]
    fn a_full_disk_is_transient_a_missing_file_is_not_found() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(Fault::from(full).kind, ErrorKind::Io);
        assert!(ErrorKind::Io.is_transient());
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(Fault::from(gone).kind, ErrorKind::NotFound);
    }

    #[test]
    fn redb_says_already_open_as_its_own_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let _first = redb::Database::create(&path).expect("first open");
        let second = redb::Database::create(&path).expect_err("second open");
        let fault = Fault::from(second);
        assert_eq!(fault.kind, ErrorKind::AlreadyOpen, "{fault}");
        assert!(fault.at(path.display().to_string()).is_transient());
    }
}
