//! What a command prints: a table (or a sentence) for people, or exactly one JSON document
//! for scripts. A user is shown without their password hash, a session by its handle only.

use auth_domain::{admin::UserSession, audit::AuthEvent, User};
use serde::Serialize;
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::table;

/// The result of a command, before it is rendered.
#[derive(Debug)]
pub(crate) enum Output {
    /// Users, as listed.
    Users(Vec<User>),
    /// One user.
    User(User),
    /// Sessions, each with its owner.
    Sessions(Vec<UserSession>),
    /// Audit events.
    Events(Vec<AuthEvent>),
    /// What an action did: a sentence for people, an object for scripts.
    Done {
        /// The sentence.
        message: String,
        /// The object.
        json: Value,
    },
}

/// A user as shown: never the password hash.
#[derive(Serialize)]
struct UserView<'a> {
    id: String,
    email: &'a str,
    username: &'a str,
    created_at: String,
}

impl<'a> UserView<'a> {
    fn of(user: &'a User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str(),
            username: user.username.as_str(),
            created_at: instant(user.created_at),
        }
    }

    fn row(&self) -> [String; 4] {
        [
            self.id.clone(),
            self.email.to_owned(),
            self.username.to_owned(),
            self.created_at.clone(),
        ]
    }
}

const USER_HEADER: [&str; 4] = ["ID", "EMAIL", "USERNAME", "CREATED"];

/// A session as shown: its handle (a hash of its id), never the id or its data.
#[derive(Serialize)]
struct SessionView<'a> {
    handle: &'a str,
    user_id: String,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    ip: Option<String>,
    user_agent: Option<&'a str>,
}

impl<'a> SessionView<'a> {
    fn of(owned: &'a UserSession) -> Self {
        let session = &owned.session;
        Self {
            handle: session.handle.as_str(),
            user_id: owned.user_id.to_string(),
            created_at: instant(session.created_at),
            last_seen_at: instant(session.last_seen_at),
            expires_at: instant(session.expires_at),
            ip: session.device.ip.map(|ip| ip.to_string()),
            user_agent: session.device.user_agent.as_deref(),
        }
    }

    fn row(&self) -> [String; 7] {
        [
            self.handle.to_owned(),
            self.user_id.clone(),
            self.created_at.clone(),
            self.last_seen_at.clone(),
            self.expires_at.clone(),
            self.ip.clone().unwrap_or_default(),
            self.user_agent.unwrap_or_default().to_owned(),
        ]
    }
}

const SESSION_HEADER: [&str; 7] = [
    "HANDLE",
    "USER",
    "CREATED",
    "LAST SEEN",
    "EXPIRES",
    "IP",
    "USER AGENT",
];

/// An event as shown.
#[derive(Serialize)]
struct EventView<'a> {
    id: String,
    at: String,
    kind: &'static str,
    user_id: Option<String>,
    actor: &'static str,
    request_id: Option<&'a str>,
    ip: Option<String>,
    user_agent: Option<&'a str>,
    count: u32,
}

impl<'a> EventView<'a> {
    fn of(event: &'a AuthEvent) -> Self {
        Self {
            id: event.id.to_string(),
            at: instant(event.at),
            kind: event.kind.as_str(),
            user_id: event.user_id.map(|user| user.to_string()),
            actor: event.actor.as_str(),
            request_id: event.request_id.as_deref(),
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent.as_deref(),
            count: event.count,
        }
    }

    fn row(&self) -> [String; 8] {
        [
            self.at.clone(),
            self.kind.to_owned(),
            self.count.to_string(),
            self.user_id.clone().unwrap_or_default(),
            self.actor.to_owned(),
            self.ip.clone().unwrap_or_default(),
            self.user_agent.unwrap_or_default().to_owned(),
            self.request_id.unwrap_or_default().to_owned(),
        ]
    }
}

const EVENT_HEADER: [&str; 8] = [
    "AT",
    "KIND",
    "COUNT",
    "USER",
    "ACTOR",
    "IP",
    "USER AGENT",
    "REQUEST ID",
];

/// RFC 3339, as the HTTP API writes instants.
fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// `output` as a table or a sentence (`json == false`), or as one JSON document; either
/// way ending with a newline.
pub(crate) fn render(output: &Output, json: bool) -> String {
    let document = match output {
        Output::Users(users) => {
            let views: Vec<_> = users.iter().map(UserView::of).collect();
            if !json {
                let rows: Vec<_> = views.iter().map(UserView::row).collect();
                return table::render(USER_HEADER, &rows);
            }
            json!(views)
        }
        Output::User(user) => {
            let view = UserView::of(user);
            if !json {
                return table::render(USER_HEADER, &[view.row()]);
            }
            json!(view)
        }
        Output::Sessions(sessions) => {
            let views: Vec<_> = sessions.iter().map(SessionView::of).collect();
            if !json {
                let rows: Vec<_> = views.iter().map(SessionView::row).collect();
                return table::render(SESSION_HEADER, &rows);
            }
            json!(views)
        }
        Output::Events(events) => {
            let views: Vec<_> = events.iter().map(EventView::of).collect();
            if !json {
                let rows: Vec<_> = views.iter().map(EventView::row).collect();
                return table::render(EVENT_HEADER, &rows);
            }
            json!(views)
        }
        Output::Done {
            message,
            json: document,
        } => {
            if !json {
                return format!("{message}\n");
            }
            document.clone()
        }
    };
    format!("{document}\n")
}

#[cfg(test)]
mod tests {
    use auth_domain::{Email, PasswordHash, UserId, Username};
    use time::macros::datetime;

    use super::*;

    fn ada() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            username: Username::parse("ada_l").expect("valid"),
            password_hash: PasswordHash::from_trusted("$argon2id$v=19$secret-hash".into()),
            created_at: datetime!(2026-12-03 10:00:00.5 UTC),
            email_verified: false,
        }
    }

    #[test]
    fn a_user_is_shown_without_their_password_hash() {
        let user = ada();
        for json in [false, true] {
            let shown = render(&Output::Users(vec![user.clone()]), json);
            assert!(shown.contains("ada@example.com"), "{shown}");
            assert!(!shown.contains("argon2"), "{shown}");
        }
        let document: Value =
            serde_json::from_str(&render(&Output::User(user.clone()), true)).expect("JSON");
        assert_eq!(
            document,
            json!({
                "id": user.id.to_string(),
                "email": "ada@example.com",
                "username": "ada_l",
                "created_at": "2026-12-03T10:00:00.5Z",
            })
        );
    }

    #[test]
    fn json_output_is_one_document_even_when_empty() {
        assert_eq!(render(&Output::Sessions(Vec::new()), true), "[]\n");
        assert_eq!(
            render(&Output::Events(Vec::new()), false),
            "AT  KIND  COUNT  USER  ACTOR  IP  USER AGENT  REQUEST ID\n"
        );
        let done = Output::Done {
            message: "purged 3 expired sessions".into(),
            json: json!({"purged": 3}),
        };
        assert_eq!(render(&done, false), "purged 3 expired sessions\n");
        assert_eq!(render(&done, true), "{\"purged\":3}\n");
    }
}
