//! The [`ChallengeStore`] adapter: one row of `webauthn_challenges` per ceremony in
//! flight, by the digest of its challenge.

use auth_domain::{
    factors::{Ceremony, ChallengeStore, PendingChallenge},
    RepositoryError, UserId,
};
use sea_orm::{
    sea_query::Query, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter,
};
use time::OffsetDateTime;

use crate::{entity::webauthn_challenges, error::repository_error, timestamp};

/// WebAuthn ceremonies in the `webauthn_challenges` table.
#[derive(Debug, Clone)]
pub struct SqlChallengeStore {
    db: DatabaseConnection,
}

impl SqlChallengeStore {
    /// A store on an open pool (see [`crate::connect`]) of an installed schema.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl ChallengeStore for SqlChallengeStore {
    async fn put(&self, challenge: PendingChallenge) -> Result<(), RepositoryError> {
        let backend = self.db.get_database_backend();
        let mut statement = Query::insert();
        statement
            .into_table(webauthn_challenges::Entity)
            .columns([
                webauthn_challenges::Column::Digest,
                webauthn_challenges::Column::Ceremony,
                webauthn_challenges::Column::UserId,
                webauthn_challenges::Column::State,
                webauthn_challenges::Column::ExpiresAt,
            ])
            .values([
                challenge.digest.as_str().into(),
                challenge.ceremony.as_str().into(),
                challenge.user_id.map(|user| user.as_uuid()).into(),
                challenge.state.as_str().into(),
                timestamp::value(backend, challenge.expires_at).into(),
            ])
            .map_err(|err| RepositoryError::new(format!("put challenge: {err}")))?;
        self.db
            .execute(backend.build(&statement))
            .await
            .map_err(|err| repository_error("put challenge", &err))?;
        Ok(())
    }

    /// A read, then a `DELETE` under the same conditions: of concurrent takes (from any
    /// instance) only the one whose delete removed the row returns it. A take for another
    /// ceremony, or past the expiry, matches nothing and so deletes nothing.
    async fn take(
        &self,
        digest: &str,
        ceremony: Ceremony,
        now: OffsetDateTime,
    ) -> Result<Option<PendingChallenge>, RepositoryError> {
        let failed = |err: DbErr| repository_error("take challenge", &err);
        let now = timestamp::value(self.db.get_database_backend(), now);
        let live = || {
            sea_orm::Condition::all()
                .add(webauthn_challenges::Column::Digest.eq(digest))
                .add(webauthn_challenges::Column::Ceremony.eq(ceremony.as_str()))
                .add(webauthn_challenges::Column::ExpiresAt.gt(now.clone()))
        };
        let Some(row) = webauthn_challenges::Entity::find()
            .filter(live())
            .one(&self.db)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        let deleted = webauthn_challenges::Entity::delete_many()
            .filter(live())
            .exec(&self.db)
            .await
            .map_err(failed)?;
        if deleted.rows_affected == 0 {
            return Ok(None);
        }
        into_challenge(row).map(Some)
    }

    /// One batch, as `crate::purge::expired_batch` deletes it.
    async fn purge_expired(&self, now: OffsetDateTime, batch: u64) -> Result<u64, RepositoryError> {
        crate::purge::expired_batch::<webauthn_challenges::Entity>(
            &self.db,
            webauthn_challenges::Column::Digest,
            webauthn_challenges::Column::ExpiresAt,
            now,
            batch,
        )
        .await
        .map_err(|err| repository_error("purge challenges", &err))
    }
}

/// The ceremony a row holds; a ceremony this version cannot read is a storage error.
fn into_challenge(row: webauthn_challenges::Model) -> Result<PendingChallenge, RepositoryError> {
    let ceremony = Ceremony::parse(&row.ceremony).ok_or_else(|| {
        RepositoryError::new("take challenge: a stored challenge has an unknown ceremony")
    })?;
    Ok(PendingChallenge {
        digest: row.digest,
        ceremony,
        user_id: row.user_id.map(UserId::from_uuid),
        state: row.state,
        expires_at: row.expires_at,
    })
}
