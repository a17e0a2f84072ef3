//! Writes that run inside a transaction's session, or outside any: the same statement
//! either way, so that a unit of work applied in a transaction and one applied change by
//! change (a server without transactions) run one code.

use mongodb::ClientSession;

/// The session of the transaction a write runs in; `None` outside any.
pub(crate) type Tx<'a> = Option<&'a mut ClientSession>;

/// Awaits a driver action, in `tx`'s session when there is one.
macro_rules! run {
    ($tx:expr, $action:expr) => {
        match $tx.as_deref_mut() {
            Some(session) => $action.session(session).await,
            None => $action.await,
        }
    };
}

pub(crate) use run;

/// Why a write failed: the driver (whose labels tell a transaction to retry), or a value
/// that cannot be stored.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The driver failed.
    Driver(mongodb::error::Error),
    /// A value could not be encoded (an instant out of range).
    Invalid(auth_domain::RepositoryError),
}

impl Failure {
    /// The domain's error, describing a driver failure as one of `operation`.
    pub(crate) fn into_repository_error(
        self,
        operation: &'static str,
    ) -> auth_domain::RepositoryError {
        match self {
            Self::Driver(error) => crate::error::repository_error(operation, &error),
            Self::Invalid(error) => error,
        }
    }
}

impl From<mongodb::error::Error> for Failure {
    fn from(error: mongodb::error::Error) -> Self {
        Self::Driver(error)
    }
}

impl From<auth_domain::RepositoryError> for Failure {
    fn from(error: auth_domain::RepositoryError) -> Self {
        Self::Invalid(error)
    }
}
