//! What the pipeline receives for one mail: `{from, to, cc, subject,
//! date, messageId, text, html, attachments, uid, mailbox}`.

use base64::Engine as _;
use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use serde_json::{Map, Value, json};

/// The message of the mail `raw`, found under `uid` in `mailbox`.
pub(super) fn to_message(raw: &[u8], uid: u32, mailbox: &str) -> Value {
    let mut out = Map::new();
    match MessageParser::default().parse(raw) {
        Some(mail) => {
            out.insert("from".into(), first_address(mail.from()));
            out.insert("to".into(), addresses(mail.to()));
            out.insert("cc".into(), addresses(mail.cc()));
            out.insert("subject".into(), text(mail.subject()));
            out.insert(
                "date".into(),
                mail.date()
                    .map_or(Value::Null, |d| Value::String(d.to_rfc3339())),
            );
            out.insert(
                "messageId".into(),
                mail.message_id()
                    .map_or(Value::Null, |id| Value::String(format!("<{id}>"))),
            );
            // A mail with only HTML still gets a `text` (converted from the
            // HTML); `html` is only ever HTML the sender wrote.
            out.insert(
                "text".into(),
                mail.body_text(0)
                    .map_or(Value::Null, |t| Value::String(t.into_owned())),
            );
            let html = mail.html_bodies().find_map(|part| match &part.body {
                PartType::Html(html) => Some(Value::String(html.to_string())),
                _ => None,
            });
            out.insert("html".into(), html.unwrap_or(Value::Null));
            let attachments = mail
                .attachments()
                .map(|part| {
                    let content_type = part.content_type().map_or_else(
                        || "application/octet-stream".to_owned(),
                        |ct| match ct.subtype() {
                            Some(sub) => format!("{}/{}", ct.ctype(), sub),
                            None => ct.ctype().to_owned(),
                        },
                    );
                    let bytes = part.contents();
                    json!({
                        "filename": part.attachment_name(),
                        "contentType": content_type.to_ascii_lowercase(),
                        "size": bytes.len(),
                        "content": base64::engine::general_purpose::STANDARD.encode(bytes),
                    })
                })
                .collect();
            out.insert("attachments".into(), Value::Array(attachments));
        }
        None => {
            // Not a mail at all (empty): the pipeline still sees what came.
            for field in ["from", "subject", "date", "messageId", "html"] {
                out.insert(field.into(), Value::Null);
            }
            out.insert("to".into(), json!([]));
            out.insert("cc".into(), json!([]));
            out.insert(
                "text".into(),
                Value::String(String::from_utf8_lossy(raw).into_owned()),
            );
            out.insert("attachments".into(), json!([]));
        }
    }
    out.insert("uid".into(), json!(uid));
    out.insert("mailbox".into(), Value::String(mailbox.to_owned()));
    Value::Object(out)
}

fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// Every address of a header (groups flattened), as `Name <a@b>` or `a@b`.
fn addresses(address: Option<&Address<'_>>) -> Value {
    Value::Array(
        address
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| shown(a.name(), a.address()))
            .map(Value::String)
            .collect(),
    )
}

fn first_address(address: Option<&Address<'_>>) -> Value {
    address
        .and_then(|a| a.iter().find_map(|a| shown(a.name(), a.address())))
        .map_or(Value::Null, Value::String)
}

/// `Name <a@b>`, the name quoted when it holds characters that would
/// split or end it, so the string parses back as the same address.
fn shown(name: Option<&str>, address: Option<&str>) -> Option<String> {
    let address = address.filter(|a| !a.is_empty())?;
    let Some(name) = name
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != address)
    else {
        return Some(address.to_owned());
    };
    let special = |c: char| "()<>[]:;@\\,.\"".contains(c);
    if name.contains(special) {
        let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
        Some(format!("\"{quoted}\" <{address}>"))
    } else {
        Some(format!("{name} <{address}>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = concat!(
        "From: \"Doe, Jane\" <jane@example.com>\r\n",
        "To: Ann <ann@example.com>, bo@example.com\r\n",
        "Cc: Team: carl@example.com, Dana <dana@example.com>;\r\n",
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n",
        "Date: Tue, 1 Jul 2025 10:00:00 +0200\r\n",
        "Message-ID: <m-1@example.com>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
        "\r\n",
        "--outer\r\n",
        "Content-Type: multipart/alternative; boundary=\"inner\"\r\n",
        "\r\n",
        "--inner\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "Hello Ann\r\n",
        "--inner\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<p>Hello <b>Ann</b></p>\r\n",
        "--inner--\r\n",
        "--outer\r\n",
        "Content-Type: application/pdf; name=\"order.pdf\"\r\n",
        "Content-Disposition: attachment; filename=\"order.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "JVBERi0xLjQK\r\n",
        "--outer--\r\n",
    );

    #[test]
    fn a_mixed_mail_becomes_the_message_shape() {
        let m = to_message(MIXED.as_bytes(), 7, "INBOX");
        assert_eq!(m["from"], json!("\"Doe, Jane\" <jane@example.com>"));
        assert_eq!(m["to"], json!(["Ann <ann@example.com>", "bo@example.com"]));
        assert_eq!(
            m["cc"],
            json!(["carl@example.com", "Dana <dana@example.com>"])
        );
        assert_eq!(m["subject"], json!("Grüße"));
        assert_eq!(m["date"], json!("2025-07-01T10:00:00+02:00"));
        assert_eq!(m["messageId"], json!("<m-1@example.com>"));
        assert_eq!(m["text"].as_str().map(str::trim_end), Some("Hello Ann"));
        assert_eq!(
            m["html"].as_str().map(str::trim_end),
            Some("<p>Hello <b>Ann</b></p>")
        );
        assert_eq!(
            m["attachments"],
            json!([{"filename": "order.pdf", "contentType": "application/pdf", "size": 9, "content": "JVBERi0xLjQK"}])
        );
        assert_eq!(
            (m["uid"].clone(), m["mailbox"].clone()),
            (json!(7), json!("INBOX"))
        );
    }

    #[test]
    fn a_plain_mail_has_no_html_and_no_attachments() {
        let m = to_message(b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n", 1, "in");
        assert_eq!(m["from"], json!("a@b.example"));
        assert_eq!(m["to"], json!([]));
        assert_eq!(m["html"], Value::Null);
        assert_eq!(m["messageId"], Value::Null);
        assert_eq!(m["attachments"], json!([]));
        assert_eq!(m["text"].as_str().map(str::trim_end), Some("body"));
    }
}
