//! The [`UserRepository`] adapter.

use auth_domain::{
    session::Credential, Email, InsertUserError, NewUser, PasswordHash, RepositoryError, User,
    UserId, UserRepository, Username,
};
use migration::names::{USERS_EMAIL_UNIQUE, USERS_USERNAME_UNIQUE};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};

use crate::{
    entity::users,
    error::{database_error, repository_error, violated, Violated},
    timestamp,
};

/// Users in a SQL database built by the `migration` crate.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    db: DatabaseConnection,
}

impl SqlUserRepository {
    /// A repository on an open pool (see [`crate::connect`]).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The pool.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// An engine reports only the first index an insert violates, and SQLite may check the
    /// username first; when the default username (the email itself) collides, the email is
    /// what the user needs to hear about. The insert has already failed: this look-up only
    /// picks the message, it decides nothing.
    pub(crate) async fn username_or_email_taken(&self, email: &Email) -> InsertUserError {
        match self.find_by_email(email).await {
            Ok(Some(_)) => InsertUserError::EmailTaken,
            Ok(None) | Err(_) => InsertUserError::UsernameTaken,
        }
    }

    async fn find_one(
        &self,
        operation: &'static str,
        filter: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<Option<User>, RepositoryError> {
        users::Entity::find()
            .filter(filter)
            .one(&self.db)
            .await
            .map(|row| row.map(into_user))
            .map_err(|err| repository_error(operation, &err))
    }
}

impl UserRepository for SqlUserRepository {
    async fn insert(&self, user: NewUser) -> Result<User, InsertUserError> {
        // What is written is what is returned: the user at the domain's precision.
        let user = user.into_user();
        // The unique indexes are the only judge of "taken": a look-up first would race.
        match insert_row(&self.db, &user).await {
            Ok(()) => Ok(user),
            Err(err) => Err(match taken(&err) {
                Some(Taken::Email) => InsertUserError::EmailTaken,
                Some(Taken::Username) => self.username_or_email_taken(&user.email).await,
                None => InsertUserError::Unexpected(repository_error("insert user", &err)),
            }),
        }
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.find_one("find user by id", users::Column::Id.eq(id.as_uuid()))
            .await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        self.find_one(
            "find user by email",
            users::Column::Email.eq(email.as_str()),
        )
        .await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, RepositoryError> {
        self.find_one(
            "find user by username",
            users::Column::Username.eq(username.as_str()),
        )
        .await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, RepositoryError> {
        // Compare-and-set in one statement, the credential with the hash.
        let replaced = set_password(&self.db, id, new, Some(current))
            .await
            .map_err(|err| repository_error("replace password hash", &err))?;
        Ok(replaced == 1)
    }

    /// The user and their sessions go in one transaction, so that a failure halfway
    /// deletes nothing. A session made by a login racing with this delete may outlive it,
    /// but it never loads with an owner again (the load joins the user row): it is logged
    /// out all the same.
    async fn delete(&self, id: UserId) -> Result<bool, RepositoryError> {
        let transaction = self
            .db
            .begin()
            .await
            .map_err(|err| repository_error("delete user", &err))?;
        let deleted = delete_with_sessions(&transaction, id)
            .await
            .map_err(|err| repository_error("delete user", &err))?;
        transaction
            .commit()
            .await
            .map_err(|err| repository_error("delete user", &err))?;
        Ok(deleted == 1)
    }
}

pub(crate) fn into_user(row: users::Model) -> User {
    User {
        id: UserId::from_uuid(row.id),
        email: Email::from_trusted(row.email),
        username: Username::from_trusted(row.username),
        password_hash: PasswordHash::from_trusted(row.password_hash),
        created_at: row.created_at,
        email_verified: row.email_verified,
    }
}

/// Inserts `user` (unverified, as every new user is), its credential with its hash; on
/// the pool or inside a transaction. A taken email or username fails it: see [`taken`].
pub(crate) async fn insert_row(db: &impl ConnectionTrait, user: &User) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut statement = Query::insert();
    statement
        .into_table(users::Entity)
        .columns([
            users::Column::Id,
            users::Column::Email,
            users::Column::Username,
            users::Column::PasswordHash,
            users::Column::Credential,
            users::Column::CreatedAt,
            users::Column::EmailVerified,
        ])
        .values([
            user.id.as_uuid().into(),
            user.email.as_str().into(),
            user.username.as_str().into(),
            user.password_hash.as_str().into(),
            Credential::of(&user.password_hash).as_str().into(),
            timestamp::value(backend, user.created_at).into(),
            user.email_verified.into(),
        ])
        .map_err(|err| DbErr::Custom(format!("insert user: {err}")))?;
    db.execute(backend.build(&statement)).await?;
    Ok(())
}

/// Deletes the user `id` and every session of theirs; returns the users deleted (0 or 1).
/// Meant for a transaction, so that a failure halfway deletes nothing.
pub(crate) async fn delete_with_sessions(
    db: &impl ConnectionTrait,
    id: UserId,
) -> Result<u64, DbErr> {
    let deleted = users::Entity::delete_by_id(id.as_uuid()).exec(db).await?;
    crate::sessions::delete_of_user(db, id).await?;
    Ok(deleted.rows_affected)
}

/// Sets `id`'s password hash to `new` and its credential with it, if the hash is still
/// `current` (compare-and-set) or whatever it is with `None`; returns the rows matched
/// (not changed, even on MySQL: sqlx connects with CLIENT_FOUND_ROWS).
pub(crate) async fn set_password(
    db: &impl ConnectionTrait,
    id: UserId,
    new: &PasswordHash,
    current: Option<&PasswordHash>,
) -> Result<u64, DbErr> {
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(new.as_str()))
        .col_expr(
            users::Column::Credential,
            Expr::value(Credential::of(new).as_str()),
        )
        .filter(users::Column::Id.eq(id.as_uuid()));
    if let Some(current) = current {
        update = update.filter(users::Column::PasswordHash.eq(current.as_str()));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// Moves `id` from the address `from` to `to`, verified, if `from` is still theirs; a
/// default username (the address itself) follows the address. Returns the rows matched;
/// `to` taken by another account fails it with a unique violation.
pub(crate) async fn set_email(
    db: &impl ConnectionTrait,
    id: UserId,
    from: &Email,
    to: &Email,
) -> Result<u64, DbErr> {
    let username = Expr::case(
        Expr::col(users::Column::Username).eq(from.as_str()),
        Expr::value(to.as_str()),
    )
    .finally(Expr::col(users::Column::Username));
    let updated = users::Entity::update_many()
        .col_expr(users::Column::Email, Expr::value(to.as_str()))
        .col_expr(users::Column::Username, username.into())
        .col_expr(users::Column::EmailVerified, Expr::value(true))
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::Email.eq(from.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Marks `id`'s address verified if it is still `email`; returns the rows matched.
pub(crate) async fn mark_email_verified(
    db: &impl ConnectionTrait,
    id: UserId,
    email: &Email,
) -> Result<u64, DbErr> {
    let updated = users::Entity::update_many()
        .col_expr(users::Column::EmailVerified, Expr::value(true))
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::Email.eq(email.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Which value of a new user is already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Email,
    Username,
}

/// Which unique index an insert violated, if it violated one of the two on `users`.
pub(crate) fn taken(err: &DbErr) -> Option<Taken> {
    let db = database_error(err)?;
    if !db.is_unique_violation() {
        return None;
    }
    taken_by(db.constraint(), db.message())
}

/// The field whose unique index a violation names (see [`crate::error::violated`]).
fn taken_by(constraint: Option<&str>, message: &str) -> Option<Taken> {
    match violated(constraint, message)? {
        Violated::Index(name) => index(name),
        Violated::Columns(columns) => columns.split(", ").find_map(|column| match column.trim() {
            "users.email" => Some(Taken::Email),
            "users.username" => Some(Taken::Username),
            _ => None,
        }),
    }
}

fn index(name: &str) -> Option<Taken> {
    match name {
        USERS_EMAIL_UNIQUE => Some(Taken::Email),
        USERS_USERNAME_UNIQUE => Some(Taken::Username),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_violations_are_told_apart_by_constraint_name() {
        assert_eq!(taken_by(Some(USERS_EMAIL_UNIQUE), ""), Some(Taken::Email));
        assert_eq!(
            taken_by(Some(USERS_USERNAME_UNIQUE), ""),
            Some(Taken::Username)
        );
        assert_eq!(taken_by(Some("users_pkey"), ""), None);
        assert_eq!(
            taken_by(
                None,
                "duplicate key value violates unique constraint \"idx_users_username_unique\""
            ),
            Some(Taken::Username)
        );
    }

    #[test]
    fn sqlite_violations_are_told_apart_by_column() {
        let taken = |message| taken_by(None, message);
        assert_eq!(
            taken("UNIQUE constraint failed: users.email"),
            Some(Taken::Email)
        );
        assert_eq!(
            taken("UNIQUE constraint failed: users.username"),
            Some(Taken::Username)
        );
        assert_eq!(taken("UNIQUE constraint failed: users.id"), None);
    }

    #[test]
    fn mysql_violations_are_told_apart_by_key_even_when_the_value_mimics_one() {
        let taken = |message| taken_by(None, message);
        assert_eq!(
            taken("Duplicate entry 'ada@example.com' for key 'idx_users_email_unique'"),
            Some(Taken::Email)
        );
        assert_eq!(
            taken("Duplicate entry 'ada_l' for key 'users.idx_users_username_unique'"),
            Some(Taken::Username)
        );
        assert_eq!(
            taken("Duplicate entry 'x for key idx_users_username_unique' for key 'idx_users_email_unique'"),
            Some(Taken::Email)
        );
        assert_eq!(taken("Duplicate entry '\\x01' for key 'PRIMARY'"), None);
    }
}
