use auth_domain::{session::Owner, User, UserId};
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the API shows them: never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub(crate) struct UserBody {
    #[schema(value_type = uuid::Uuid)]
    id: UserId,
    /// Normalised: trimmed, lower case.
    email: String,
    /// The email address unless one was chosen at registration.
    username: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// Whether the user followed a link mailed to `email`.
    email_verified: bool,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            created_at: user.created_at,
            email_verified: user.email_verified,
        }
    }
}

impl From<&Owner> for UserBody {
    fn from(owner: &Owner) -> Self {
        Self {
            id: owner.id,
            email: owner.email().as_str().to_owned(),
            username: owner.username().as_str().to_owned(),
            created_at: owner.created_at,
            email_verified: owner.email_verified,
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_domain::{Email, PasswordHash, Username};
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_user_is_shown_without_the_hash_and_with_an_rfc3339_timestamp() {
        let id = UserId::generate();
        let user = User {
            id,
            email: Email::parse("ada@example.com").unwrap(),
            username: Username::parse("ada").unwrap(),
            password_hash: PasswordHash::from_trusted("$argon2id$secret".into()),
            created_at: datetime!(2025-06-01 12:30:05.123456 UTC),
            email_verified: false,
        };
        let body = serde_json::to_value(UserBody::from(&user)).unwrap();
        assert_eq!(
            body,
            json!({
                "id": id.to_string(),
                "email": "ada@example.com",
                "username": "ada",
                "created_at": "2025-06-01T12:30:05.123456Z",
                "email_verified": false,
            })
        );
    }
}
