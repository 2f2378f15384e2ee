//! `email`: polls an IMAP mailbox for unseen mail. Each poll selects the
//! mailbox, searches `UNSEEN UNDELETED` and fetches with `BODY.PEEK[]`
//! (reading never marks a mail seen) the mails not already in hand, up to
//! the consumer's prefetch. A mail is marked `\Seen` (`after: mark-read`)
//! or moved to `moveTo` (`after: move`) only when it is settled: after
//! its execution ended well, or after it was dead-lettered.
//!
//! IMAP has no delivery count: every delivery is attempt 1 and not
//! `redelivered`; retries happen in process while the mail is held. A
//! worker that dies leaves its mails unseen, so the next poll, by any
//! worker, hands them out again.
//!
//! IMAP sessions run one command at a time: one connection per source,
//! behind an async mutex, serves both the polls and the settling.

mod message;
mod session;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sluice_spec::{EmailAfter, EmailTrigger};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{Delivery, Names, Settings, Settle, Source, Subscription, TriggerError};
use session::{Abilities, Endpoint, Login, Session, breaks_connection, mailbox_name};

/// Time between polls when the trigger does not say.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How long one poll (select, search, fetch) or one settling may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn source(
    trigger: &EmailTrigger,
    settings: &Settings,
    _names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let config = |m: String| TriggerError::Config(m);
    let url = settings.required(trigger.url.as_deref(), "url")?;
    let (endpoint, url_login) =
        Endpoint::parse(url).map_err(|e| config(format!("trigger.url: {e}")))?;
    if trigger.url.is_some() && url_login.is_some() {
        return Err(config(
            "trigger.url: credentials belong in the account (username, password), not in the pipeline"
                .into(),
        ));
    }
    let login = login(settings, url_login)?;

    let mailbox = trigger.mailbox.clone().unwrap_or_else(|| "INBOX".into());
    check_mailbox("mailbox", &mailbox)?;
    let after = match (
        trigger.after.unwrap_or(EmailAfter::MarkRead),
        &trigger.move_to,
    ) {
        (EmailAfter::MarkRead, None) => After::MarkRead,
        (EmailAfter::MarkRead, Some(_)) => {
            return Err(config(
                "trigger.moveTo is only used with `after: move`: add it, or remove moveTo".into(),
            ));
        }
        (EmailAfter::Move, None) => {
            return Err(config(
                "trigger.moveTo is missing: `after: move` needs the mailbox to move handled mail to"
                    .into(),
            ));
        }
        (EmailAfter::Move, Some(to)) => {
            check_mailbox("moveTo", to)?;
            if *to == mailbox {
                return Err(config(format!(
                    "trigger.moveTo: '{to}' is the mailbox being read; name another one"
                )));
            }
            After::Move {
                to: to.clone(),
                wire: mailbox_name(to),
            }
        }
    };
    let poll_interval = trigger.poll_interval.map_or(DEFAULT_POLL_INTERVAL, |d| d.0);
    if poll_interval.is_zero() {
        return Err(config("trigger.pollInterval must be more than 0".into()));
    }
    Ok(Arc::new(EmailSource {
        shared: Arc::new(Shared {
            mailbox_wire: mailbox_name(&mailbox),
            endpoint,
            login,
            mailbox,
            after,
            poll_interval,
            link: Mutex::new(None),
            in_hand: StdMutex::new(HashSet::new()),
        }),
    }))
}

/// The login: the account's `username` and `password`, or those of the
/// account's `url`.
fn login(settings: &Settings, url_login: Option<Login>) -> Result<Login, TriggerError> {
    let username = settings.text("username")?.map(str::to_owned);
    let password = settings.text("password")?.map(str::to_owned);
    let (url_user, url_password) = match url_login {
        Some(l) => (Some(l.username), Some(l.password)),
        None => (None, None),
    };
    let missing = |field: &str| {
        TriggerError::Config(format!(
            "the account's '{field}' is missing: the IMAP login needs trigger.account to name an account with 'username' and 'password'"
        ))
    };
    let username = username
        .or(url_user)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| missing("username"))?;
    let password = password
        .or(url_password)
        .ok_or_else(|| missing("password"))?;
    Ok(Login { username, password })
}

fn check_mailbox(field: &str, name: &str) -> Result<(), TriggerError> {
    if name.is_empty() {
        return Err(TriggerError::Config(format!(
            "trigger.{field} must not be empty"
        )));
    }
    if name.contains(['\r', '\n', '\0']) {
        return Err(TriggerError::Config(format!(
            "trigger.{field}: a mailbox name cannot hold line breaks"
        )));
    }
    Ok(())
}

/// What settling a mail does.
enum After {
    MarkRead,
    /// `to` as written, `wire` as IMAP spells it.
    Move {
        to: String,
        wire: String,
    },
}

struct EmailSource {
    shared: Arc<Shared>,
}

/// What the source, its subscription and its deliveries share.
struct Shared {
    endpoint: Endpoint,
    login: Login,
    /// As written (shown to the pipeline) and as IMAP spells it.
    mailbox: String,
    mailbox_wire: String,
    after: After,
    poll_interval: Duration,
    /// The one connection; `None` once it broke (the next user reconnects).
    link: Mutex<Option<Link>>,
    /// UIDs fetched and not settled yet: never fetched again meanwhile.
    in_hand: StdMutex<HashSet<u32>>,
}

struct Link {
    session: Session,
    abilities: Abilities,
    /// The selected mailbox's UIDVALIDITY: UIDs from another one mean nothing.
    uid_validity: Option<u32>,
}

/// A mail fetched by a poll.
struct Fetched {
    uid: u32,
    raw: Vec<u8>,
}

/// What one poll found.
struct Polled {
    mails: Vec<Fetched>,
    /// The UIDVALIDITY the mails' UIDs belong to.
    uid_validity: Option<u32>,
    /// Unseen mail was left for lack of room.
    more: bool,
}

impl Shared {
    fn describe(&self) -> String {
        let scheme = if self.endpoint.tls { "imaps" } else { "imap" };
        format!(
            "{scheme}://{}:{}/{}",
            self.endpoint.host, self.endpoint.port, self.mailbox
        )
    }

    /// Connects, logs in, selects the mailbox and checks that `moveTo` exists.
    async fn connect(&self) -> Result<Link, TriggerError> {
        let (mut session, abilities) = self.endpoint.open(&self.login).await?;
        let failed = |what: String, e: async_imap::error::Error| {
            TriggerError::Connection(format!("{what}: {e} ({})", self.describe()))
        };
        let selected =
            tokio::time::timeout(COMMAND_TIMEOUT, async {
                let selected = session.select(&self.mailbox_wire).await.map_err(|e| {
                    failed(format!("cannot select the mailbox '{}'", self.mailbox), e)
                })?;
                if let After::Move { to, wire } = &self.after {
                    session.status(wire, "(MESSAGES)").await.map_err(|e| {
                        failed(format!("the moveTo mailbox '{to}' cannot be used"), e)
                    })?;
                }
                Ok::<_, TriggerError>(selected)
            })
            .await
            .map_err(|_| self.timed_out("selecting the mailbox"))??;
        Ok(Link {
            session,
            abilities,
            uid_validity: selected.uid_validity,
        })
    }

    fn timed_out(&self, what: &str) -> TriggerError {
        TriggerError::Connection(format!(
            "{what} took more than {}s ({})",
            COMMAND_TIMEOUT.as_secs(),
            self.describe()
        ))
    }

    fn held(&self) -> usize {
        self.in_hand.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// Fetches up to `room` unseen mails not in hand.
    async fn poll(&self, room: usize) -> Result<Polled, TriggerError> {
        let mut guard = self.link.lock().await;
        // Owned while in use: a poll cancelled halfway drops the
        // connection instead of leaving it mid-command for the next user.
        let mut link = match guard.take() {
            Some(link) => link,
            None => self.connect().await?,
        };
        let in_hand = self.in_hand.lock().map(|h| h.clone()).unwrap_or_default();
        let polled = tokio::time::timeout(
            COMMAND_TIMEOUT,
            poll_on(&mut link, &self.mailbox_wire, &in_hand, room),
        )
        .await;
        drain_unsolicited(&link.session);
        match polled {
            Ok(Ok(found)) => {
                *guard = Some(link);
                Ok(found)
            }
            Ok(Err(e)) => {
                if !breaks_connection(&e) {
                    *guard = Some(link);
                }
                Err(TriggerError::Connection(format!(
                    "polling the mailbox '{}' failed: {e} ({})",
                    self.mailbox,
                    self.describe()
                )))
            }
            Err(_) => Err(self.timed_out("a poll")),
        }
    }

    /// Marks the mail read or moves it.
    async fn settle(&self, uid: u32, uid_validity: Option<u32>) -> Result<(), TriggerError> {
        let mut guard = self.link.lock().await;
        let mut link = match guard.take() {
            Some(link) => link,
            None => self.connect().await?,
        };
        if link.uid_validity != uid_validity {
            *guard = Some(link);
            return Err(TriggerError::Connection(format!(
                "the mailbox '{}' was recreated since mail {uid} was read (UIDVALIDITY changed); it is left as it is",
                self.mailbox
            )));
        }
        let settled =
            tokio::time::timeout(COMMAND_TIMEOUT, settle_on(&mut link, uid, &self.after)).await;
        drain_unsolicited(&link.session);
        let what = match &self.after {
            After::MarkRead => format!("marking mail {uid} read"),
            After::Move { to, .. } => format!("moving mail {uid} to '{to}'"),
        };
        match settled {
            Ok(Ok(())) => {
                *guard = Some(link);
                Ok(())
            }
            Ok(Err(e)) => {
                if !breaks_connection(&e) {
                    *guard = Some(link);
                }
                Err(TriggerError::Connection(format!(
                    "{what} failed: {e} ({})",
                    self.describe()
                )))
            }
            Err(_) => Err(self.timed_out(&what)),
        }
    }
}

async fn poll_on(
    link: &mut Link,
    mailbox: &str,
    in_hand: &HashSet<u32>,
    room: usize,
) -> Result<Polled, async_imap::error::Error> {
    let selected = link.session.select(mailbox).await?;
    link.uid_validity = selected.uid_validity;
    let mut uids: Vec<u32> = link
        .session
        .uid_search("UNSEEN UNDELETED")
        .await?
        .into_iter()
        .filter(|uid| !in_hand.contains(uid))
        .collect();
    uids.sort_unstable();
    let more = uids.len() > room;
    uids.truncate(room);
    if uids.is_empty() {
        return Ok(Polled {
            mails: Vec::new(),
            uid_validity: link.uid_validity,
            more,
        });
    }
    let wanted: HashSet<u32> = uids.iter().copied().collect();
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let fetches: Vec<_> = link
        .session
        .uid_fetch(&set, "(UID BODY.PEEK[])")
        .await?
        .try_collect()
        .await?;
    let mut mails: Vec<Fetched> = fetches
        .iter()
        .filter_map(|f| {
            let uid = f.uid.filter(|uid| wanted.contains(uid))?;
            Some(Fetched {
                uid,
                raw: f.body()?.to_vec(),
            })
        })
        .collect();
    mails.sort_by_key(|f| f.uid);
    mails.dedup_by_key(|f| f.uid);
    Ok(Polled {
        mails,
        uid_validity: link.uid_validity,
        more,
    })
}

async fn settle_on(
    link: &mut Link,
    uid: u32,
    after: &After,
) -> Result<(), async_imap::error::Error> {
    let uid = uid.to_string();
    let session = &mut link.session;
    match after {
        After::MarkRead => {
            let _: Vec<_> = session
                .uid_store(&uid, "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await?;
        }
        After::Move { wire, .. } if link.abilities.can_move => {
            session.uid_mv(&uid, wire).await?;
        }
        After::Move { wire, .. } => {
            // Without MOVE: copy, flag deleted, expunge (only this mail
            // when the server has UID EXPUNGE).
            session.uid_copy(&uid, wire).await?;
            let _: Vec<_> = session
                .uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect()
                .await?;
            if link.abilities.uid_expunge {
                let _: Vec<_> = session.uid_expunge(&uid).await?.try_collect().await?;
            } else {
                let _: Vec<_> = session.expunge().await?.try_collect().await?;
            }
        }
    }
    Ok(())
}

/// Drops what the server said on its own (new mail, flag changes): the
/// polls search anyway, and a full channel would only lose them.
fn drain_unsolicited(session: &Session) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

#[async_trait]
impl Source for EmailSource {
    fn describe(&self) -> String {
        self.shared.describe()
    }

    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError> {
        // A fresh connection proves the settings and replaces a broken one.
        let mut guard = self.shared.link.lock().await;
        *guard = None;
        *guard = Some(self.shared.connect().await?);
        drop(guard);
        Ok(Box::new(EmailSubscription {
            shared: self.shared.clone(),
            prefetch: prefetch.max(1),
            queue: VecDeque::new(),
            next_poll: Instant::now(),
            more: false,
        }))
    }
}

struct EmailSubscription {
    shared: Arc<Shared>,
    prefetch: usize,
    /// Fetched and not handed out yet.
    queue: VecDeque<Delivery>,
    next_poll: Instant,
    /// The last poll left unseen mail for lack of room.
    more: bool,
}

#[async_trait]
impl Subscription for EmailSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        loop {
            if let Some(delivery) = self.queue.pop_front() {
                return Ok(delivery);
            }
            let room = self.prefetch.saturating_sub(self.shared.held());
            if !(self.more && room > 0) {
                tokio::time::sleep_until(self.next_poll).await;
            }
            self.next_poll = Instant::now() + self.shared.poll_interval;
            let room = self.prefetch.saturating_sub(self.shared.held());
            if room == 0 {
                continue;
            }
            let polled = self.shared.poll(room).await?;
            // Only worth an early poll when this one took something.
            self.more = polled.more && !polled.mails.is_empty();
            let uid_validity = polled.uid_validity;
            for mail in polled.mails {
                let held = Held::take(&self.shared, mail.uid);
                let message = message::to_message(&mail.raw, mail.uid, &self.shared.mailbox);
                self.queue.push_back(Delivery {
                    message,
                    attempt: 1,
                    redelivered: false,
                    settle: Box::new(EmailSettle {
                        shared: self.shared.clone(),
                        uid: mail.uid,
                        uid_validity,
                        _held: held,
                    }),
                });
            }
            if !self.queue.is_empty() {
                tracing::debug!(source = %self.shared.describe(), mails = self.queue.len(), "fetched unseen mail");
            }
        }
    }
}

/// A UID in hand: it leaves the set when the mail is settled, handed back
/// or dropped, and the next poll may fetch it again if it is still unseen.
struct Held {
    shared: Arc<Shared>,
    uid: u32,
}

impl Held {
    fn take(shared: &Arc<Shared>, uid: u32) -> Held {
        if let Ok(mut in_hand) = shared.in_hand.lock() {
            in_hand.insert(uid);
        }
        Held {
            shared: shared.clone(),
            uid,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut in_hand) = self.shared.in_hand.lock() {
            in_hand.remove(&self.uid);
        }
    }
}

struct EmailSettle {
    shared: Arc<Shared>,
    uid: u32,
    uid_validity: Option<u32>,
    _held: Held,
}

#[async_trait]
impl Settle for EmailSettle {
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        self.shared.settle(self.uid, self.uid_validity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `after: move` on a server without MOVE: copy, flag `\Deleted`,
    /// then `UID EXPUNGE` of that mail only (another deleted mail stays).
    #[tokio::test]
    async fn without_move_mail_is_copied_then_expunged() {
        let Ok(url) = std::env::var("SLUICE_TEST_IMAP_URL") else {
            eprintln!("skipped: set SLUICE_TEST_IMAP_URL");
            return;
        };
        let (endpoint, login) = Endpoint::parse(&url).expect("url");
        let login = login.expect("SLUICE_TEST_IMAP_URL holds user:pass@");
        let (mut admin, _) = endpoint.open(&login).await.expect("connect");
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let (from, to) = (
            format!("fallback-{stamp}"),
            format!("fallback-{stamp}-done"),
        );
        admin.create(&from).await.expect("create");
        admin.create(&to).await.expect("create");
        admin
            .append(
                &from,
                Some("(\\Deleted)"),
                None,
                "Subject: someone else's\r\n\r\nx\r\n",
            )
            .await
            .expect("append");
        admin
            .append(&from, None, None, "Subject: ours\r\n\r\ny\r\n")
            .await
            .expect("append");

        let shared = Shared {
            endpoint,
            login,
            mailbox_wire: mailbox_name(&from),
            mailbox: from.clone(),
            after: After::Move {
                wire: mailbox_name(&to),
                to: to.clone(),
            },
            poll_interval: Duration::from_millis(200),
            link: Mutex::new(None),
            in_hand: StdMutex::new(HashSet::new()),
        };
        let polled = shared.poll(10).await.expect("poll");
        assert_eq!(polled.mails.len(), 1, "deleted mail is not fetched");
        if let Some(link) = shared.link.lock().await.as_mut() {
            assert!(link.abilities.can_move && link.abilities.uid_expunge);
            link.abilities.can_move = false;
        }
        shared
            .settle(polled.mails[0].uid, polled.uid_validity)
            .await
            .expect("settle");
        let left = admin.status(&from, "(MESSAGES)").await.expect("status");
        let moved = admin.status(&to, "(MESSAGES)").await.expect("status");
        assert_eq!((left.exists, moved.exists), (1, 1));
    }
}
