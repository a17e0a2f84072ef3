//! Driver errors, told apart and described without what the server echoed back.

use auth_domain::RepositoryError;
use mongodb::error::{ErrorKind, WriteFailure};
use tower_sessions::session_store;

/// The server code of a unique-index violation.
const DUPLICATE_KEY: i32 = 11000;

/// A driver failure, described by its kind and code only. The server's own message can
/// quote the command or the offending key (a filter with a password hash, a session key,
/// an address), so it is left out.
#[derive(Debug, thiserror::Error)]
#[error("MongoDB {operation} failed: {detail}")]
pub(crate) struct DriverError {
    operation: &'static str,
    detail: String,
}

impl DriverError {
    /// Describes `error` as a failure of `operation`.
    pub(crate) fn new(operation: &'static str, error: &mongodb::error::Error) -> Self {
        Self {
            operation,
            detail: describe(error),
        }
    }
}

/// The domain's error for `error`, raised while doing `operation`: "unavailable" when
/// [`is_unavailable`] says so, an opaque storage failure otherwise.
pub(crate) fn repository_error(
    operation: &'static str,
    error: &mongodb::error::Error,
) -> RepositoryError {
    let described = DriverError::new(operation, error);
    if is_unavailable(error) {
        RepositoryError::unavailable(described)
    } else {
        RepositoryError::new(described)
    }
}

/// tower-sessions' error for `error`, raised while doing `operation`. Its errors are text
/// only, so unavailability is marked in the text (see `auth_domain::unavailable_message`).
pub(crate) fn session_error(
    operation: &'static str,
    error: &mongodb::error::Error,
) -> session_store::Error {
    let described = DriverError::new(operation, error);
    session_store::Error::Backend(if is_unavailable(error) {
        auth_domain::unavailable_message(described)
    } else {
        described.to_string()
    })
}

/// Server codes that say "out of reach, try later": HostUnreachable 6, HostNotFound 7,
/// MaxTimeMSExpired 50, WriteConcernFailed 64 (a write concern timeout), NetworkTimeout 89,
/// ShutdownInProgress 91, PrimarySteppedDown 189, NotWritablePrimary 10107,
/// InterruptedAtShutdown 11600, InterruptedDueToReplStateChange 11602,
/// NotPrimaryNoSecondaryOk 13435, NotPrimaryOrSecondary 13436, OutOfDiskSpace 14031.
const UNAVAILABLE_CODES: [i32; 13] = [
    6, 7, 50, 64, 89, 91, 189, 10107, 11600, 11602, 13435, 13436, 14031,
];

/// Whether `error` says the server is out of reach rather than that the operation or the
/// data is wrong: no server selected within the timeout, a connection lost or refused, a
/// server shutting down or stepping down, a full disk. Retrying later may succeed.
pub(crate) fn is_unavailable(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(e) => UNAVAILABLE_CODES.contains(&e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => UNAVAILABLE_CODES.contains(&e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => UNAVAILABLE_CODES.contains(&e.code),
        _ => false,
    }
}

fn describe(error: &mongodb::error::Error) -> String {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => {
            format!(
                "write error {} ({})",
                e.code,
                e.code_name.as_deref().unwrap_or("unnamed")
            )
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => {
            format!("write concern error {} ({})", e.code, e.code_name)
        }
        ErrorKind::Write(_) => "write error".to_owned(),
        ErrorKind::Command(e) => format!("command error {} ({})", e.code, e.code_name),
        ErrorKind::InsertMany(_) | ErrorKind::BulkWrite(_) => "bulk write error".to_owned(),
        ErrorKind::BsonDeserialization(_) => "a stored document has an unexpected shape".to_owned(),
        ErrorKind::BsonSerialization(_) => "a document could not be encoded".to_owned(),
        // Connection, selection, authentication and the like: their messages describe
        // the deployment, never a document.
        _ => error.to_string(),
    }
}

/// The server's message of a duplicate-key error, or None for any other error.
pub(crate) fn duplicate_key_message(error: &mongodb::error::Error) -> Option<&str> {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY => {
            Some(&e.message)
        }
        ErrorKind::Command(e) if e.code == DUPLICATE_KEY => Some(&e.message),
        _ => None,
    }
}

/// Which unique index a duplicate-key message names.
///
/// The driver keeps neither `keyPattern` nor `keyValue` of a write error, only the
/// message, whose shape every server shares:
/// `E11000 duplicate key error collection: db.users index: email_unique dup key: { email: "…" }`.
pub(crate) fn violated_index(message: &str) -> Option<&str> {
    let (_, after) = message.split_once(" index: ")?;
    after.split_whitespace().next()
}

/// The first field of the duplicated key in such a message (`email` above), for an index
/// that was not created under the expected name.
pub(crate) fn duplicated_field(message: &str) -> Option<&str> {
    let (_, after) = message.split_once("dup key: {")?;
    let (field, _) = after.split_once(':')?;
    let field = field.trim().trim_matches('"');
    (!field.is_empty()).then_some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONGOD: &str = "E11000 duplicate key error collection: auth.users index: email_unique dup key: { email: \"ada@example.com\" }";

    #[test]
    fn the_violated_index_is_read_from_the_message() {
        assert_eq!(violated_index(MONGOD), Some("email_unique"));
        assert_eq!(
            violated_index(
                "E11000 duplicate key error collection: a.b index: _id_ dup key: { _id: \"x\" }"
            ),
            Some("_id_")
        );
        assert_eq!(violated_index("something else entirely"), None);
    }

    #[test]
    fn an_unreachable_server_is_unavailable_and_a_bad_document_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = mongodb::error::Error::from(refused);
        assert!(is_unavailable(&error));
        assert!(repository_error("find user", &error).is_unavailable());
        assert!(auth_domain::is_unavailable(&session_error(
            "load session",
            &error
        )));
        let bad = mongodb::error::Error::custom("a stored document has an unexpected shape");
        assert!(!is_unavailable(&bad));
        assert!(!repository_error("find user", &bad).is_unavailable());
    }

    #[test]
    fn the_duplicated_field_is_read_from_the_message() {
        assert_eq!(duplicated_field(MONGOD), Some("email"));
        assert_eq!(
            duplicated_field(
                "E11000 duplicate key error index: u_1 dup key: { \"username\": \"ada\" }"
            ),
            Some("username")
        );
        assert_eq!(duplicated_field("E11000 duplicate key error"), None);
    }
}
