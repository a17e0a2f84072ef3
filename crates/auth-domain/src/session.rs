//! Facts about stored sessions that every session store shares, whatever its backend.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::UserId;

/// The session key under which the login manager keeps the logged-in user
/// (`{"user_id": "...", "auth_hash": [...]}`).
pub const USER_DATA_KEY: &str = "auth.user";

/// The key a session is stored under: the hex SHA-256 of its id, so that a copy of the
/// sessions table or collection holds no cookie that could be replayed.
pub fn storage_key(session_id: &str) -> String {
    hex::encode(Sha256::digest(session_id.as_bytes()))
}

/// The id of the user logged in on a session, read from its data, so that stores can keep
/// it in an indexed field and a user's sessions can be listed and revoked.
pub fn user_id(data: &HashMap<String, serde_json::Value>) -> Option<UserId> {
    data.get(USER_DATA_KEY)?
        .get("user_id")?
        .as_str()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_key_is_a_sha256_digest_not_the_id() {
        let key = storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbA");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("c2Vzc2lvbi1pZC1ub3QtcmVhbA"));
        assert_eq!(key, storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbA"));
        assert_ne!(key, storage_key("c2Vzc2lvbi1pZC1ub3QtcmVhbB"));
    }

    #[test]
    fn the_user_id_is_read_from_the_login_data() {
        let id = UserId::generate();
        let mut data = HashMap::new();
        assert_eq!(user_id(&data), None);
        data.insert(
            USER_DATA_KEY.to_owned(),
            serde_json::json!({"user_id": id.to_string(), "auth_hash": [1, 2]}),
        );
        assert_eq!(user_id(&data), Some(id));
        data.insert(
            USER_DATA_KEY.to_owned(),
            serde_json::json!({"user_id": null}),
        );
        assert_eq!(user_id(&data), None);
    }
}
