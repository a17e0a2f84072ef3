//! The admin commands, once the stores are open: one generic code path for every backend.

use anyhow::{anyhow, bail, Context as _};
use auth_domain::{
    accounts::{Accounts, Context},
    admin::{Administration, UserSession},
    audit::AuditLog,
    mail::Outbox,
    ChangePasswordError, Password, RegisterError, Registration, Stores, User, UserId, UserSessions,
    ValidationErrors,
};
use serde_json::json;

use super::{
    args::{EventsArgs, MailCommand, RevokeArgs, SessionsCommand, UsersCommand},
    render::Output,
};

/// The admin commands, run as an operator (their audit events say `admin`) through the
/// account use cases of one backend.
pub(crate) struct Admin<B: Stores> {
    accounts: Accounts<B>,
    context: Context,
}

/// Where a new password comes from; the prompt names whose it is.
pub(crate) type PasswordSource<'a> = &'a mut (dyn FnMut(&str) -> anyhow::Result<Password> + Send);

impl<B: Stores> Admin<B> {
    /// The commands over `accounts`.
    pub(crate) fn new(accounts: Accounts<B>) -> Self {
        Self {
            accounts,
            context: Context::admin(),
        }
    }

    /// Runs `app users ...`.
    pub(crate) async fn users(
        &self,
        command: UsersCommand,
        password: PasswordSource<'_>,
    ) -> anyhow::Result<Output> {
        match command {
            UsersCommand::List { limit } => Ok(Output::Users(
                self.stores()
                    .admin()
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
                match self.accounts.register(registration, &self.context).await {
                    Ok(user) => Ok(Output::User(user)),
                    Err(RegisterError::Invalid(errors) | RegisterError::Breached(errors)) => {
                        bail!("refused: {}", summary(&errors))
                    }
                    Err(e @ (RegisterError::EmailTaken | RegisterError::UsernameTaken)) => {
                        bail!("refused: {e}")
                    }
                    Err(e) => Err(anyhow!(e).context("creating the user")),
                }
            }
            UsersCommand::SetPassword { user } => {
                let user = self.user(&user).await?;
                let new = password(&format!("New password for {}: ", user.username.as_str()))?;
                let ended = match self
                    .accounts
                    .set_password(user.id, &new, &self.context)
                    .await
                {
                    Ok(ended) => ended,
                    Err(
                        ChangePasswordError::Invalid(errors)
                        | ChangePasswordError::Breached(errors),
                    ) => {
                        bail!("refused: {}", summary(&errors))
                    }
                    Err(ChangePasswordError::UnknownUser) => bail!("no such user: {}", user.id),
                    Err(e) => return Err(anyhow!(e).context("setting the password")),
                };
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
                let Some(ended) = self
                    .accounts
                    .delete_user(user.id, &self.context)
                    .await
                    .context("deleting the user")?
                else {
                    bail!("no such user: {}", user.id);
                };
                Ok(Output::Done {
                    message: format!(
                        "user {} deleted; {ended} session(s) ended",
                        user.username.as_str()
                    ),
                    json: json!({ "deleted": user.id, "sessions_ended": ended }),
                })
            }
            UsersCommand::ResetMfa { user } => {
                let user = self.user(&user).await?;
                let removed = self
                    .accounts
                    .reset_factors(user.id, &user.email, &self.context)
                    .await
                    .context("removing the second factors")?;
                Ok(Output::Done {
                    message: format!(
                        "second factors of {} removed: TOTP {}, {} passkey(s), {} recovery code(s)",
                        user.username.as_str(),
                        if removed.totp { "on" } else { "off" },
                        removed.passkeys,
                        removed.recovery_codes,
                    ),
                    json: json!({
                        "user": user.id,
                        "removed": {
                            "totp": removed.totp,
                            "passkeys": removed.passkeys,
                            "recovery_codes": removed.recovery_codes,
                        },
                    }),
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
                    .stores()
                    .sessions()
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
                self.stores()
                    .admin()
                    .list_sessions(limit)
                    .await
                    .context("listing sessions")?,
            )),
            SessionsCommand::Revoke(RevokeArgs {
                handle: Some(handle),
                ..
            }) => {
                let revoked = self
                    .accounts
                    .revoke_any_session(&handle, &self.context)
                    .await
                    .context("revoking the session")?;
                if revoked.is_none() {
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
                let ended = self
                    .accounts
                    .revoke_user_sessions(user.id, &self.context)
                    .await
                    .context("ending the user's sessions")?;
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
                    .stores()
                    .admin()
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
                self.stores()
                    .audit()
                    .recent_for_user(user.id, &auth_domain::audit::EventPage::newest(args.limit))
                    .await
            }
            None => self.stores().admin().recent_events(args.limit).await,
        };
        Ok(Output::Events(events.context("listing events")?))
    }

    /// Runs `app mail ...`.
    pub(crate) async fn mail(&self, command: MailCommand) -> anyhow::Result<Output> {
        let outbox = self.stores().outbox();
        match command {
            MailCommand::List { status, limit } => Ok(Output::Mail(
                outbox
                    .list(status, limit)
                    .await
                    .context("listing the outbox")?,
            )),
            MailCommand::Retry { id } => {
                let now = self.accounts.clock().now();
                let retried = outbox
                    .retry_failed(id, now)
                    .await
                    .context("retrying failed mail")?;
                match id {
                    Some(id) if retried == 0 => bail!("no failed mail with id {id}"),
                    Some(id) => Ok(Output::Done {
                        message: format!("mail {id} is pending again"),
                        json: json!({ "retried": retried, "id": id }),
                    }),
                    None => Ok(Output::Done {
                        message: format!("{retried} failed mail(s) pending again"),
                        json: json!({ "retried": retried }),
                    }),
                }
            }
        }
    }

    /// The user `reference` names: an id, an email address or a username.
    async fn user(&self, reference: &str) -> anyhow::Result<User> {
        if let Ok(id) = reference.parse::<UserId>() {
            if let Some(user) = self
                .accounts
                .service()
                .get_user(id)
                .await
                .context("looking up the user")?
            {
                return Ok(user);
            }
        }
        self.accounts
            .service()
            .find_by_login(reference)
            .await
            .context("looking up the user")?
            // Debug-quoted: the operator's own input, with any control character escaped.
            .ok_or_else(|| anyhow!("no such user: {reference:?}"))
    }

    fn stores(&self) -> &B {
        self.accounts.stores()
    }

    /// The use cases the commands run.
    #[cfg(test)]
    pub(crate) fn accounts(&self) -> &Accounts<B> {
        &self.accounts
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
