//! What can go wrong in a store.

/// A store error. `NotFound`, `Conflict` and `Invalid` are the caller's to
/// answer (404, 409, 400); the rest are the platform's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A write shared by many callers failed; each gets its message.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

/// `Result` with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
