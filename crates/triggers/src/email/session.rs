//! One IMAP connection: where the server is, how to reach it (plain TCP
//! or TLS), the login, and which failures mean the connection is gone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use crate::TriggerError;

/// How long connecting, the TLS handshake, the greeting and the login may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A byte stream an IMAP session runs over: TCP, or TLS over TCP.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

pub(super) type Session = async_imap::Session<Box<dyn Io>>;

/// Where the IMAP server is, from `imaps://host:993` or `imap://host:143`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// The login, never shown in logs or errors.
#[derive(Clone)]
pub(super) struct Login {
    pub username: String,
    pub password: String,
}

impl Endpoint {
    /// Reads an `imap://` or `imaps://` URL. Credentials in it are
    /// returned apart (percent-decoded) for the caller to accept or refuse.
    pub fn parse(url: &str) -> Result<(Endpoint, Option<Login>), String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("'{url}' is not a URL: expected imaps://host:993 or imap://host:143")
        })?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => true,
            "imap" => false,
            other => {
                return Err(format!(
                    "the scheme '{other}' is not supported: use imaps:// (TLS) or imap://"
                ));
            }
        };
        if rest.contains(['?', '#']) {
            return Err("a query or fragment is not supported in an IMAP URL".into());
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(
                "a path is not supported in an IMAP URL: name the mailbox in trigger.mailbox"
                    .into(),
            );
        }
        let (login, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let login = Login {
                    username: decode(user)?,
                    password: decode(password)?,
                };
                (Some(login), hostport)
            }
            None => (None, authority),
        };
        let default_port = if tls { 993 } else { 143 };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("'{hostport}' is not a host"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => parse_port(port)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("'{hostport}' is not a host")),
            };
            (host.to_owned(), port)
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host.to_owned(), parse_port(port)?),
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("'{url}' names no host"));
        }
        Ok((Endpoint { tls, host, port }, login))
    }

    /// Connects, reads the greeting and logs in. Returns the session and
    /// whether the server can `MOVE` and `UID EXPUNGE`.
    pub async fn open(&self, login: &Login) -> Result<(Session, Abilities), TriggerError> {
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, self.open_within(login)).await;
        match opened {
            Ok(result) => result,
            Err(_) => Err(TriggerError::Connection(format!(
                "{}:{} did not answer within {}s",
                self.host,
                self.port,
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn open_within(&self, login: &Login) -> Result<(Session, Abilities), TriggerError> {
        let lost = |e: &dyn std::fmt::Display| {
            TriggerError::Connection(format!("cannot reach {}:{}: {e}", self.host, self.port))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| lost(&e))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if self.tls {
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| TriggerError::Config(format!("trigger.url: '{}': {e}", self.host)))?;
            let tls = TlsConnector::from(tls_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    TriggerError::Connection(format!(
                        "the TLS handshake with {}:{} failed: {e}",
                        self.host, self.port
                    ))
                })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut client = async_imap::Client::new(stream);
        match client.read_response().await {
            Ok(Some(_greeting)) => {}
            Ok(None) => {
                return Err(lost(
                    &"the server closed the connection before its greeting",
                ));
            }
            Err(e) => return Err(lost(&e)),
        }
        let mut session = client
            .login(&login.username, &login.password)
            .await
            .map_err(|(e, _)| match e {
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                    TriggerError::Connection(format!(
                        "{}:{} refused the login (check the account's username and password)",
                        self.host, self.port
                    ))
                }
                other => lost(&other),
            })?;
        let capabilities = session.capabilities().await.map_err(|e| lost(&e))?;
        let abilities = Abilities {
            can_move: capabilities.has_str("MOVE"),
            uid_expunge: capabilities.has_str("UIDPLUS"),
        };
        Ok((session, abilities))
    }
}

/// What the server can do beyond IMAP4rev1.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Abilities {
    /// RFC 6851 `MOVE`.
    pub can_move: bool,
    /// RFC 4315 `UID EXPUNGE`, which expunges only the named messages.
    pub uid_expunge: bool,
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("'{text}' is not a port"))
}

fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a credential in the URL has a bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a credential in the URL is not UTF-8".to_owned())
}

/// TLS with the system's roots (else Mozilla's), aws-lc-rs as the provider.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, TriggerError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| TriggerError::Connection(format!("TLS cannot be set up: {e}")))
}

/// Whether an IMAP failure leaves the connection unusable (as opposed to
/// a `NO`/`BAD` answer to one command).
pub(super) fn breaks_connection(error: &async_imap::error::Error) -> bool {
    use async_imap::error::Error;
    !matches!(
        error,
        Error::No(_) | Error::Bad(_) | Error::Validate(_) | Error::Append
    )
}

/// A mailbox name as IMAP wants it: modified UTF-7 (RFC 3501 §5.1.3).
pub(super) fn mailbox_name(name: &str) -> String {
    use base64::Engine as _;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&encoded.replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_endpoint_and_any_login() {
        let (e, login) = Endpoint::parse("imaps://mail.example.com").expect("url");
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "mail.example.com".into(),
                port: 993
            }
        );
        assert!(login.is_none());
        let (e, _) = Endpoint::parse("imap://127.0.0.1:10143/").expect("url");
        assert_eq!((e.tls, e.port), (false, 10143));
        let (e, _) = Endpoint::parse("imap://[::1]").expect("url");
        assert_eq!((e.host.as_str(), e.port), ("::1", 143));
        let (_, login) = Endpoint::parse("imap://ann%40x:p%3Ass@h").expect("url");
        let login = login.expect("login");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("ann@x", "p:ss")
        );
        assert!(Endpoint::parse("pop3://h").is_err());
        assert!(Endpoint::parse("imap://h/INBOX").is_err());
        assert!(Endpoint::parse("imap://h:0").is_err());
        assert!(Endpoint::parse("imap://").is_err());
        assert!(Endpoint::parse("mail.example.com").is_err());
    }

    #[test]
    fn mailbox_names_are_modified_utf7() {
        assert_eq!(mailbox_name("INBOX"), "INBOX");
        assert_eq!(mailbox_name("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(mailbox_name("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mailbox_name("日本語"), "&ZeVnLIqe-");
    }
}
