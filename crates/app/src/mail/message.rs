//! A domain [`Mail`] as the message that goes out: plain text, from `MAIL_FROM`, with the
//! mail's id in its `Message-ID` (a retried send is recognisably the same message) and the
//! instant it was written as its `Date`.

use std::time::SystemTime;

use auth_domain::mail::Mail;
use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType},
        Body, Mailbox,
    },
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

/// `mail` as a message from `from`. The body goes as it is (7bit) when it can: a link
/// broken into quoted-printable lines (`=3D`, a `=` at each line's end) is one a reader of
/// `MAIL_DIR` or a plain mail client cannot follow or copy. A body that cannot (not ASCII,
/// or a line over 998 bytes) is encoded as lettre decides.
pub(super) fn message(mail: &Mail, from: &Mailbox) -> Result<Message, MessageError> {
    let to: Address = mail.to.as_str().parse().map_err(MessageError::Recipient)?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.as_str())
        .message_id(Some(format!("<{}@{}>", mail.id, from.email.domain())))
        .date(SystemTime::from(mail.created_at))
        .header(ContentType::TEXT_PLAIN)
        .body(plain_body(&mail.body))
        .map_err(MessageError::Build)
}

/// The longest line a message may carry (RFC 5322, 2.1.1), line break excluded.
const MAX_LINE_OCTETS: usize = 998;

/// `text` as the body: as it is (7bit) when every line is ASCII without NUL or bare CR
/// and at most [`MAX_LINE_OCTETS`] long, with CRLF line breaks; otherwise encoded as
/// lettre decides. (lettre itself picks 7bit only for lines under 76 octets, which every
/// mailed link is over.)
fn plain_body(text: &str) -> Body {
    let seven_bit = text.bytes().all(|b| b.is_ascii() && b != 0 && b != b'\r')
        && text.split('\n').all(|line| line.len() <= MAX_LINE_OCTETS);
    if seven_bit {
        Body::dangerous_pre_encoded(
            text.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text.to_owned())
    }
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

    #[test]
    fn a_long_link_goes_whole_and_a_body_that_cannot_is_still_sent() {
        let link = format!(
            "https://auth.example.com/reset-password#token={}",
            "A".repeat(43)
        );
        let linked = mail("ada@example.com", &format!("Open this:\n\n{link}\n"));
        let from: Mailbox = "no-reply@auth.example.com".parse().expect("valid");
        let formatted =
            String::from_utf8(message(&linked, &from).expect("built").formatted()).expect("ASCII");
        assert!(
            formatted.contains("Content-Transfer-Encoding: 7bit\r\n"),
            "{formatted}"
        );
        assert!(
            formatted.contains(&link),
            "the link on one line: {formatted}"
        );
        let wide = mail("ada@example.com", &"x".repeat(2000));
        let formatted = message(&wide, &from).expect("built").formatted();
        assert!(!String::from_utf8_lossy(&formatted).contains("7bit"));
    }
}
