//! A small SMTP server for the `email` tests: greeting, EHLO, STARTTLS
//! (rustls with a self-signed certificate for `localhost`), implicit TLS,
//! AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP and QUIT. It keeps
//! every mail it takes (envelope and raw data) for the test to look at.
//!
//! Reads and writes go through `AsyncRead`/`AsyncWrite` directly, so the
//! server needs no tokio feature beyond `net`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The login the server takes.
pub const USER: &str = "mailer";
pub const PASSWORD: &str = "s3cret-pass";
/// A recipient refused for good (550).
pub const REJECTED: &str = "nobody@example.com";
/// A recipient refused for now (451).
pub const DEFERRED: &str = "busy@example.com";

/// How clients connect.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain, with STARTTLS offered.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// Plain, no STARTTLS offered.
    Plain,
}

#[derive(Clone, Copy)]
pub struct Config {
    pub security: Security,
    /// Whether MAIL needs a login first (AUTH is offered either way).
    pub auth: bool,
    /// The mechanisms offered.
    pub mechanisms: &'static str,
}

impl Config {
    pub fn new(security: Security) -> Self {
        Config {
            security,
            auth: false,
            mechanisms: "PLAIN LOGIN",
        }
    }

    pub fn with_auth(mut self) -> Self {
        self.auth = true;
        self
    }
}

/// One mail the server took.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (dot-stuffing undone, CRLF line ends).
    pub data: String,
    /// Whether the connection was encrypted.
    pub tls: bool,
    /// Who logged in, if anyone.
    pub user: Option<String>,
}

pub struct Server {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// Listens on 127.0.0.1 (a free port) and serves until the test ends.
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let acceptor = acceptor();
        let (r, c) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (acceptor, r) = (acceptor.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = serve(Box::new(stream), acceptor, config, r).await;
                });
            }
        });
        Server {
            port,
            received,
            connections,
        }
    }

    /// The mails taken so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many connections clients made.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`
/// (aws-lc-rs, named here so no process provider is needed).
fn acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection read line by line.
struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    async fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
            }
            let mut chunk = [0u8; 4096];
            let stream = &mut self.stream;
            let n = poll_fn(|cx| {
                let mut rb = ReadBuf::new(&mut chunk);
                match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, reply: &str) -> io::Result<()> {
        let bytes = format!("{reply}\r\n").into_bytes();
        let mut at = 0;
        let stream = &mut self.stream;
        while at < bytes.len() {
            let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, &bytes[at..])).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += n;
        }
        poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
    }
}

fn decode(b64: &str) -> String {
    STANDARD
        .decode(b64.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The address inside `<…>` of `MAIL FROM:<a> …` or `RCPT TO:<a>`.
fn path_of(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

async fn serve(
    stream: Box<dyn Io>,
    acceptor: TlsAcceptor,
    config: Config,
    received: Arc<Mutex<Vec<Received>>>,
) -> io::Result<()> {
    let mut tls = config.security == Security::Implicit;
    let stream: Box<dyn Io> = if tls {
        Box::new(acceptor.accept(stream).await?)
    } else {
        stream
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    conn.send("220 localhost ESMTP sluice-test").await?;
    let mut user: Option<String> = None;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    while let Some(line) = conn.line().await? {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec!["localhost".to_owned(), "8BITMIME".to_owned()];
                if config.security == Security::StartTls && !tls {
                    lines.push("STARTTLS".to_owned());
                }
                lines.push(format!("AUTH {}", config.mechanisms));
                let last = lines.len() - 1;
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    conn.send(&format!("250{sep}{l}")).await?;
                }
            }
            "HELO" => conn.send("250 localhost").await?,
            "STARTTLS" if config.security == Security::StartTls && !tls => {
                conn.send("220 2.0.0 ready to start TLS").await?;
                let upgraded = acceptor.accept(conn.stream).await?;
                conn = Conn {
                    stream: Box::new(upgraded),
                    buf: Vec::new(),
                };
                tls = true;
                user = None;
                from = None;
                rcpts.clear();
            }
            "AUTH" => {
                let (mechanism, initial) = match arg.split_once(' ') {
                    Some((m, i)) => (m.to_ascii_uppercase(), Some(i.to_owned())),
                    None => (arg.to_ascii_uppercase(), None),
                };
                if !config.mechanisms.split(' ').any(|m| m == mechanism) {
                    conn.send("504 5.5.4 mechanism not supported").await?;
                    continue;
                }
                let (name, password) = if mechanism == "PLAIN" {
                    let response = match initial {
                        Some(i) => i,
                        None => {
                            conn.send("334 ").await?;
                            conn.line().await?.unwrap_or_default()
                        }
                    };
                    let decoded = decode(&response);
                    let mut fields = decoded.split('\0').skip(1);
                    (
                        fields.next().unwrap_or_default().to_owned(),
                        fields.next().unwrap_or_default().to_owned(),
                    )
                } else {
                    let name = match initial {
                        Some(i) => decode(&i),
                        None => {
                            conn.send("334 VXNlcm5hbWU6").await?;
                            decode(&conn.line().await?.unwrap_or_default())
                        }
                    };
                    conn.send("334 UGFzc3dvcmQ6").await?;
                    let password = decode(&conn.line().await?.unwrap_or_default());
                    (name, password)
                };
                if name == USER && password == PASSWORD {
                    user = Some(name);
                    conn.send("235 2.7.0 authentication successful").await?;
                } else {
                    conn.send("535 5.7.8 authentication credentials invalid")
                        .await?;
                }
            }
            "MAIL" => {
                if config.auth && user.is_none() {
                    conn.send("530 5.7.0 authentication required").await?;
                } else {
                    from = Some(path_of(&arg));
                    rcpts.clear();
                    conn.send("250 2.1.0 ok").await?;
                }
            }
            "RCPT" => {
                let to = path_of(&arg);
                if from.is_none() {
                    conn.send("503 5.5.1 MAIL first").await?;
                } else if to == REJECTED {
                    conn.send(&format!("550 5.1.1 <{to}>: no such user"))
                        .await?;
                } else if to == DEFERRED {
                    conn.send(&format!("451 4.3.0 <{to}>: mailbox busy, try again later"))
                        .await?;
                } else {
                    rcpts.push(to);
                    conn.send("250 2.1.5 ok").await?;
                }
            }
            "DATA" => {
                if rcpts.is_empty() {
                    conn.send("503 5.5.1 RCPT first").await?;
                    continue;
                }
                conn.send("354 end data with <CR><LF>.<CR><LF>").await?;
                let mut data = String::new();
                while let Some(line) = conn.line().await? {
                    if line == "." {
                        break;
                    }
                    let line = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(line);
                    data.push_str("\r\n");
                }
                received.lock().unwrap().push(Received {
                    mail_from: from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpts),
                    data,
                    tls,
                    user: user.clone(),
                });
                conn.send("250 2.0.0 ok: queued").await?;
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                conn.send("250 2.0.0 ok").await?;
            }
            "NOOP" => conn.send("250 2.0.0 ok").await?,
            "QUIT" => {
                conn.send("221 2.0.0 bye").await?;
                break;
            }
            _ => conn.send("502 5.5.2 command not recognized").await?,
        }
    }
    Ok(())
}
