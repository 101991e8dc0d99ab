//! Building the MIME message of a stored mail with lettre's builder (which encodes names and
//! subjects, so CR/LF in them cannot start a header of their own).
//!
//! Without a calendar: `multipart/alternative` of `text/plain` and `text/html`. With one:
//! `multipart/mixed` of that alternative plus an inline `text/calendar; method=…` part inside it
//! (Outlook shows accept/decline only from the inline part), and the same calendar attached as
//! `invite.ics`.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::db::MailRow;

/// Builds the message of `mail` from `from`, dated `date`. `Err` (with a reason for the admin)
/// when the stored address no longer parses.
pub fn build(mail: &MailRow, from: &Mailbox, date: DateTime<Utc>) -> Result<Message, String> {
    let address = super::model::parse_address(&mail.to_address)
        .map_err(|_| "invalid recipient address".to_owned())?;
    let name = one_line(&mail.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), address);
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(&mail.subject))
        .message_id(Some(mail.message_id.clone()))
        .date(date.into());
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(mail.text_body.clone()))
        .singlepart(SinglePart::html(mail.html_body.clone()));
    let message = match mail.calendar() {
        None => builder.multipart(alternative),
        Some(cal) => {
            let inline = ContentType::parse(&format!(
                "text/calendar; charset=utf-8; method={}",
                cal.method.as_str()
            ))
            .map_err(|e| format!("calendar content type: {e}"))?;
            let file = ContentType::parse("application/ics")
                .map_err(|e| format!("calendar content type: {e}"))?;
            builder.multipart(
                MultiPart::mixed()
                    .multipart(
                        alternative
                            .singlepart(SinglePart::builder().header(inline).body(cal.ics.clone())),
                    )
                    .singlepart(Attachment::new("invite.ics".to_owned()).body(cal.ics, file)),
            )
        }
    };
    message.map_err(|e| format!("building the message: {e}"))
}

/// `text` with every control character (CR, LF, tab, …) replaced by a space and the ends
/// trimmed. lettre encodes a subject's CR/LF, but panics on one in a mailbox name; a header value
/// is one line either way, so both are flattened before they reach the builder.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The header block of `message` as it goes on the wire.
pub fn headers(message: &Message) -> String {
    let raw = message.formatted();
    let raw = String::from_utf8_lossy(&raw);
    raw.split("\r\n\r\n").next().unwrap_or("").to_owned()
}
