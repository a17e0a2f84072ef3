//! Whether a store can serve requests now: the question a readiness probe asks.

use std::future::Future;

use crate::RepositoryError;

/// A store that can say whether its database answers, by a trivial query.
///
/// # Errors
///
/// Every adapter MUST:
/// - answer `Ok(())` only when a round trip to the database succeeded just now: a query
///   that reaches the server, or for an embedded engine reads its file (the schema), not
///   one a connection answers from memory;
/// - answer `Err` when the database cannot be reached or refuses the query, without
///   waiting longer than its driver would for any other query (the caller bounds the wait
///   as well);
/// - change nothing.
pub trait Readiness: Clone + Send + Sync + 'static {
    /// Asks the database a trivial question.
    fn ping(&self) -> impl Future<Output = Result<(), RepositoryError>> + Send;
}
