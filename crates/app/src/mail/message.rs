//! A domain [`Mail`] as the message that goes out: plain text, from `MAIL_FROM`, with the
//! mail's id in its `Message-ID` (a retried send is recognisably the same message) and the
//! instant it was written as its `Date`.

use std::time::SystemTime;

use auth_domain::mail::Mail;
use lettre::{
    message::{header::ContentType, Mailbox},
    Address, Message,
};

/// Why a mail cannot be made into a message: no attempt would ever succeed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The recipient is no address SMTP can carry.
    #[error("the recipient is not a deliverable address: {0}")]
    Recipient(#[source] lettre::address::AddressError),
    /// lettre refused to build it.
    #[error("the message cannot be built: {0}")]
    Build(#[source] lettre::error::Error),
}

/// `mail` as a message from `from`. The body is encoded as its content needs (7bit,
/// quoted-printable or base64), which lettre decides.
pub(super) fn message(mail: &Mail, from: &Mailbox) -> Result<Message, MessageError> {
    let to: Address = mail.to.as_str().parse().map_err(MessageError::Recipient)?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.as_str())
        .message_id(Some(format!("<{}@{}>", mail.id, from.email.domain())))
        .date(SystemTime::from(mail.created_at))
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(MessageError::Build)
}

#[cfg(test)]
mod tests {
    use auth_domain::{mail::MailKind, Email};
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    fn mail(to: &str, body: &str) -> Mail {
        Mail {
            id: Uuid::now_v7(),
            kind: MailKind::PasswordChanged,
            to: Email::parse(to).expect("valid"),
            subject: "Your password was changed".to_owned(),
            body: body.to_owned(),
            created_at: datetime!(2026-12-07 16:00:00 UTC),
        }
    }

    #[test]
    fn a_message_carries_the_mails_id_date_subject_and_plain_text_body() {
        let mail = mail("ada@example.com", "Hello Ada.\n");
        let from: Mailbox = "auth-service <no-reply@auth.example.com>"
            .parse()
            .expect("valid");
        let formatted =
            String::from_utf8(message(&mail, &from).expect("built").formatted()).expect("ASCII");
        assert!(formatted.contains(&format!("Message-ID: <{}@auth.example.com>\r\n", mail.id)));
        assert!(formatted.contains("Date: Mon, 07 Dec 2026 16:00:00 +0000\r\n"));
        assert!(formatted.contains("From: auth-service <no-reply@auth.example.com>\r\n"));
        assert!(formatted.contains("To: ada@example.com\r\n"));
        assert!(formatted.contains("Subject: Your password was changed\r\n"));
        assert!(formatted.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(formatted.ends_with("\r\n\r\nHello Ada.\r\n"), "{formatted}");
    }
}
