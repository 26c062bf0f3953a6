//! A TCP proxy in front of PostgreSQL that fails on cue, for tests of what the server does when
//! the database goes away (feature `testing`).
//!
//! It reads the frontend's messages (PostgreSQL's wire protocol: a startup packet, then one type
//! byte and a length per message) to recognise `COMMIT`, whether sent as a simple query or as a
//! prepared statement (`Parse` names it, `Bind` runs it). On cue it can:
//!
//! - `cut`: close every connection and refuse new ones (the database is unreachable) until
//!   `restore`;
//! - `on_commit_after(needle, fault)`: act on the `COMMIT` of the next transaction that ran a
//!   statement containing `needle` (`INSERT INTO orders`, say): let it through but close the
//!   connection before the answer reaches the client (`LoseAnswer`: the transaction committed,
//!   and the client cannot know), or close the connection instead of sending it (`Drop`: the
//!   transaction rolls back, and the client cannot know either), optionally cutting the whole
//!   database off at that moment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What happens to the `COMMIT` a fault waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    /// The server commits; the client never hears so.
    LoseAnswer,
    /// The server never sees the `COMMIT`; the transaction rolls back.
    Drop,
}

/// How long a lost answer waits for the server to answer the `COMMIT` (a `COMMIT` that fails, and
/// so is answered with an error, is not recognised and waits this long).
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// The server's `CommandComplete` that ends a transaction: `COMMIT`, or `ROLLBACK` when it had
/// failed.
const TRANSACTION_ENDS: [&[u8]; 2] = [b"C\0\0\0\x0bCOMMIT\0", b"C\0\0\0\x0dROLLBACK\0"];

/// The server's answers on one connection while an answer is being lost: muted, and watched for
/// the end of the transaction.
#[derive(Debug, Clone)]
struct Muting {
    mute: Arc<AtomicBool>,
    /// Whether the server has answered the `COMMIT`, that is, committed.
    answered: watch::Receiver<bool>,
}

/// A fault waiting for its `COMMIT`.
#[derive(Debug, Clone)]
struct Armed {
    needle: String,
    fault: CommitFault,
    /// Cut the database off when the fault strikes (until `restore`).
    cut: bool,
}

#[derive(Debug)]
struct Controls {
    cut: AtomicBool,
    armed: Mutex<Option<Armed>>,
    /// Tells every connection to close now (bumped by `cut`).
    close_all: watch::Sender<u64>,
}

/// The proxy; dropping it stops accepting connections.
#[derive(Debug)]
pub struct PgProxy {
    address: SocketAddr,
    controls: Arc<Controls>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl PgProxy {
    /// Listens on a free local port and forwards to `target`.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start(target: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy listener: {e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("proxy address: {e}"));
        let controls = Arc::new(Controls {
            cut: AtomicBool::new(false),
            armed: Mutex::new(None),
            close_all: watch::channel(0).0,
        });
        let shared = Arc::clone(&controls);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, shared).await;
                    }
                });
            }
        });
        PgProxy { address, controls, accept }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `url` (a PostgreSQL URL on the proxied server) pointed at the proxy instead.
    pub fn url_for(&self, url: &str) -> String {
        let mut config: tokio_postgres::Config = url.parse().unwrap_or_else(|e| panic!("not a PostgreSQL URL: {e}"));
        config.host("127.0.0.1").port(self.address.port());
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let database = config.get_dbname().unwrap_or("postgres").to_owned();
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.address.port())
    }

    /// Closes every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.controls.cut.store(true, Ordering::SeqCst);
        self.controls.close_everything();
    }

    pub fn restore(&self) {
        self.controls.cut.store(false, Ordering::SeqCst);
    }

    /// Applies `fault` to the `COMMIT` of the next transaction that runs a statement containing
    /// `needle` (compared without case); with `cut`, the database is cut off at that moment too.
    pub fn on_commit_after(&self, needle: &str, fault: CommitFault, cut: bool) {
        let armed = Armed {
            needle: needle.to_ascii_lowercase(),
            fault,
            cut,
        };
        *self.controls.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(armed);
    }
}

impl Controls {
    fn armed_needle(&self) -> Option<String> {
        let armed = self.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        armed.as_ref().map(|a| a.needle.clone())
    }

    /// Takes the armed fault (it strikes once).
    fn strike(&self) -> Option<Armed> {
        let armed = self.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()?;
        if armed.cut {
            self.cut.store(true, Ordering::SeqCst);
        }
        Some(armed)
    }

    fn close_everything(&self) {
        self.close_all.send_modify(|generation| *generation += 1);
    }
}

async fn relay(client: TcpStream, server: TcpStream, controls: Arc<Controls>) {
    // Messages are small and answered one by one: no Nagle delay on either side.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (answered, answer_seen) = watch::channel(false);
    let muting = Muting {
        mute: Arc::new(AtomicBool::new(false)),
        answered: answer_seen,
    };
    let mut close_all = controls.close_all.subscribe();
    let (closing, closed) = watch::channel(false);
    let upstream = tokio::spawn(frontend_to_server(
        client_read,
        server_write,
        Arc::clone(&controls),
        muting.clone(),
        closing,
    ));
    let downstream = tokio::spawn(server_to_frontend(server_read, client_write, muting.mute, answered));
    let mut closed = closed;
    tokio::select! {
        _ = close_all.changed() => {}
        _ = closed.changed() => {}
        _ = upstream => {}
    }
    downstream.abort();
}

/// Copies the server's answers to the client, unless they are muted (an answer being lost); says
/// when a muted answer ends the transaction.
async fn server_to_frontend(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mute: Arc<AtomicBool>, answered: watch::Sender<bool>) {
    let mut buffer = vec![0_u8; 16 * 1024];
    // Everything muted so far: the answer may come in several reads.
    let mut muted = Vec::new();
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if mute.load(Ordering::SeqCst) {
            muted.extend_from_slice(&buffer[..read]);
            if TRANSACTION_ENDS.iter().any(|end| muted.windows(end.len()).any(|w| w == *end)) {
                answered.send_replace(true);
            }
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Forwards the frontend's messages one by one, watching for the `COMMIT` an armed fault waits
/// for.
async fn frontend_to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    controls: Arc<Controls>,
    muting: Muting,
    closing: watch::Sender<bool>,
) {
    let mut statements: HashMap<String, String> = HashMap::new();
    let mut started = false;
    // Whether the transaction in progress ran a statement the armed fault waits for.
    let mut marked = false;
    loop {
        let Some(message) = read_message(&mut from, started).await else {
            return;
        };
        if !started && !is_negotiation(&message) {
            started = true;
        }
        if started {
            let sql = statement_run(&message, &mut statements);
            if let (Some(sql), Some(needle)) = (&sql, controls.armed_needle()) {
                marked |= sql.to_ascii_lowercase().contains(&needle);
            }
            let ends = sql.as_deref().is_some_and(|sql| is_word(sql, "commit") || is_word(sql, "rollback"));
            if ends
                && std::mem::take(&mut marked)
                && is_word(sql.as_deref().unwrap_or_default(), "commit")
                && let Some(armed) = controls.strike()
            {
                strike(armed, message, from, to, &controls, muting, closing).await;
                return;
            }
        }
        if to.write_all(&message).await.is_err() {
            return;
        }
    }
}

/// Applies a fault to the `COMMIT` in `message`.
async fn strike(
    armed: Armed,
    message: Vec<u8>,
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    controls: &Arc<Controls>,
    muting: Muting,
    closing: watch::Sender<bool>,
) {
    match armed.fault {
        CommitFault::Drop => {
            if armed.cut {
                controls.close_everything();
            }
            let _ = closing.send(true);
        }
        CommitFault::LoseAnswer => {
            muting.mute.store(true, Ordering::SeqCst);
            if to.write_all(&message).await.is_err() {
                return;
            }
            // The rest of the pipeline (Execute, Sync) follows; the connection goes once the
            // server has answered the COMMIT, so it has committed by then.
            let (controls, cut, mut answered) = (Arc::clone(controls), armed.cut, muting.answered);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(ANSWER_DEADLINE, answered.wait_for(|answered| *answered)).await;
                if cut {
                    controls.close_everything();
                }
                let _ = closing.send(true);
            });
            forward_rest(from, to).await;
        }
    }
}

async fn forward_rest(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    let mut buffer = vec![0_u8; 16 * 1024];
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// One whole message: before the startup packet, length-prefixed without a type byte.
async fn read_message(from: &mut OwnedReadHalf, started: bool) -> Option<Vec<u8>> {
    let mut head = vec![0_u8; if started { 5 } else { 4 }];
    from.read_exact(&mut head).await.ok()?;
    let length_at = head.len() - 4;
    let length = u32::from_be_bytes(head[length_at..].try_into().ok()?) as usize;
    let mut body = vec![0_u8; length.checked_sub(4)?];
    from.read_exact(&mut body).await.ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

/// An SSL or GSS encryption request, which comes before the startup packet.
fn is_negotiation(message: &[u8]) -> bool {
    const SSL_REQUEST: u32 = 80_877_103;
    const GSS_REQUEST: u32 = 80_877_104;
    message.len() == 8
        && matches!(
            u32::from_be_bytes([message[4], message[5], message[6], message[7]]),
            SSL_REQUEST | GSS_REQUEST
        )
}

/// The SQL a message runs (a simple query, or a `Bind` of a prepared statement), remembering
/// prepared statements' texts on the way.
fn statement_run(message: &[u8], statements: &mut HashMap<String, String>) -> Option<String> {
    let body = &message[5..];
    let mut strings = body.split(|byte| *byte == 0).map(|s| String::from_utf8_lossy(s).into_owned());
    match message[0] {
        b'Q' => strings.next(),
        b'P' => {
            let name = strings.next().unwrap_or_default();
            let sql = strings.next().unwrap_or_default();
            statements.insert(name, sql);
            None
        }
        b'B' => {
            let _portal = strings.next();
            let name = strings.next().unwrap_or_default();
            statements.get(&name).cloned()
        }
        _ => None,
    }
}

/// Whether `sql` is just this keyword (`COMMIT`, `ROLLBACK`).
fn is_word(sql: &str, word: &str) -> bool {
    sql.trim().trim_end_matches(';').eq_ignore_ascii_case(word)
}
