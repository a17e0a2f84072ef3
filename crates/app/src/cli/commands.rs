//! The admin commands, once the stores are open: one generic code path for every backend.

use anyhow::{anyhow, bail, Context as _};
use auth_domain::{
    admin::{Administration, UserSession},
    audit::AuditLog,
    AuthService, ChangePasswordError, Password, RegisterError, Registration, User, UserId,
    UserRepository, UserSessions, ValidationErrors,
};
use serde_json::json;

use super::{
    args::{EventsArgs, RevokeArgs, SessionsCommand, UsersCommand},
    render::Output,
};

/// Everything the admin commands work with, on one backend.
pub(crate) struct Stores<R, S, A, D> {
    /// Users, through the service that hashes and checks their passwords.
    pub(crate) service: AuthService<R>,
    /// Sessions, by user.
    pub(crate) sessions: S,
    /// The audit trail, by user.
    pub(crate) audit: A,
    /// Everyone's users, sessions and events.
    pub(crate) admin: D,
}

/// Where a new password comes from; the prompt names whose it is.
pub(crate) type PasswordSource<'a> = &'a mut dyn FnMut(&str) -> anyhow::Result<Password>;

impl<R, S, A, D> Stores<R, S, A, D>
where
    R: UserRepository,
    S: UserSessions,
    A: AuditLog,
    D: Administration,
{
    /// Runs `app users ...`.
    pub(crate) async fn users(
        &self,
        command: UsersCommand,
        password: PasswordSource<'_>,
    ) -> anyhow::Result<Output> {
        match command {
            UsersCommand::List { limit } => Ok(Output::Users(
                self.admin
                    .list_users(limit)
                    .await
                    .context("listing users")?,
            )),
            UsersCommand::Show { user } => Ok(Output::User(self.user(&user).await?)),
            UsersCommand::Create { email, username } => {
                let password = password(&format!("Password for {email}: "))?;
                let registration = Registration {
                    email,
                    password,
                    username,
                };
                match self.service.register(registration).await {
                    Ok(user) => Ok(Output::User(user)),
                    Err(RegisterError::Invalid(errors)) => bail!("refused: {}", summary(&errors)),
                    Err(e @ (RegisterError::EmailTaken | RegisterError::UsernameTaken)) => {
                        bail!("refused: {e}")
                    }
                    Err(e) => Err(anyhow!(e).context("creating the user")),
                }
            }
            UsersCommand::SetPassword { user } => {
                let user = self.user(&user).await?;
                let new = password(&format!("New password for {}: ", user.username.as_str()))?;
                match self.service.set_password(user.id, &new).await {
                    Ok(_) => {}
                    Err(ChangePasswordError::Invalid(errors)) => {
                        bail!("refused: {}", summary(&errors))
                    }
                    Err(ChangePasswordError::UnknownUser) => bail!("no such user: {}", user.id),
                    Err(e) => return Err(anyhow!(e).context("setting the password")),
                }
                let ended = self.end_sessions(user.id).await?;
                Ok(Output::Done {
                    message: format!(
                        "password of {} set; {ended} session(s) ended",
                        user.username.as_str()
                    ),
                    json: json!({ "user_id": user.id, "sessions_ended": ended }),
                })
            }
            UsersCommand::Delete { user } => {
                let user = self.user(&user).await?;
                // Sessions first: once the user is gone, no login can make a new one.
                let ended = self.end_sessions(user.id).await?;
                let deleted = self
                    .service
                    .delete_user(user.id)
                    .await
                    .context("deleting the user")?;
                if !deleted {
                    bail!("no such user: {}", user.id);
                }
                Ok(Output::Done {
                    message: format!(
                        "user {} deleted; {ended} session(s) ended",
                        user.username.as_str()
                    ),
                    json: json!({ "deleted": user.id, "sessions_ended": ended }),
                })
            }
        }
    }

    /// Runs `app sessions ...`.
    pub(crate) async fn sessions(&self, command: SessionsCommand) -> anyhow::Result<Output> {
        match command {
            SessionsCommand::List {
                user: Some(user),
                limit,
            } => {
                let user = self.user(&user).await?;
                let mut sessions: Vec<_> = self
                    .sessions
                    .list_user_sessions(user.id)
                    .await
                    .context("listing sessions")?
                    .into_iter()
                    .map(|session| UserSession {
                        user_id: user.id,
                        session,
                    })
                    .collect();
                sessions.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(Output::Sessions(sessions))
            }
            SessionsCommand::List { user: None, limit } => Ok(Output::Sessions(
                self.admin
                    .list_sessions(limit)
                    .await
                    .context("listing sessions")?,
            )),
            SessionsCommand::Revoke(RevokeArgs {
                handle: Some(handle),
                ..
            }) => {
                let revoked = self
                    .admin
                    .revoke_session(&handle)
                    .await
                    .context("revoking the session")?;
                if !revoked {
                    bail!("no live session with handle {handle}");
                }
                Ok(Output::Done {
                    message: format!("session {handle} revoked"),
                    json: json!({ "revoked": 1 }),
                })
            }
            SessionsCommand::Revoke(RevokeArgs {
                user: Some(user), ..
            }) => {
                let user = self.user(&user).await?;
                let ended = self.end_sessions(user.id).await?;
                Ok(Output::Done {
                    message: format!("{ended} session(s) of {} revoked", user.username.as_str()),
                    json: json!({ "user_id": user.id, "revoked": ended }),
                })
            }
            SessionsCommand::Revoke(RevokeArgs {
                handle: None,
                user: None,
            }) => bail!("name a session handle or --user"),
            SessionsCommand::Purge => {
                let purged = self
                    .admin
                    .purge_expired_sessions()
                    .await
                    .context("purging expired sessions")?;
                Ok(Output::Done {
                    message: format!("{purged} expired session(s) purged"),
                    json: json!({ "purged": purged }),
                })
            }
        }
    }

    /// Runs `app events ...`.
    pub(crate) async fn events(&self, args: EventsArgs) -> anyhow::Result<Output> {
        let events = match args.user {
            Some(user) => {
                let user = self.user(&user).await?;
                self.audit.recent_for_user(user.id, args.limit).await
            }
            None => self.admin.recent_events(args.limit).await,
        };
        Ok(Output::Events(events.context("listing events")?))
    }

    /// The user `reference` names: an id, an email address or a username.
    async fn user(&self, reference: &str) -> anyhow::Result<User> {
        if let Ok(id) = reference.parse::<UserId>() {
            if let Some(user) = self
                .service
                .get_user(id)
                .await
                .context("looking up the user")?
            {
                return Ok(user);
            }
        }
        self.service
            .find_by_login(reference)
            .await
            .context("looking up the user")?
            // Debug-quoted: the operator's own input, with any control character escaped.
            .ok_or_else(|| anyhow!("no such user: {reference:?}"))
    }

    /// Deletes every session of `user`; returns how many.
    async fn end_sessions(&self, user: UserId) -> anyhow::Result<u64> {
        self.sessions
            .delete_user_sessions(user)
            .await
            .context("ending the user's sessions")
    }
}

/// Every refusal on one line: `field: message; field: message`.
fn summary(errors: &ValidationErrors) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(errors) else {
        return errors.first_message().unwrap_or("invalid").to_owned();
    };
    fields
        .iter()
        .flat_map(|(field, messages)| {
            messages
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|message| message.as_str())
                .map(move |message| format!("{field}: {message}"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
