//! The server's front door: accepts client connections on the public
//! address (plain TCP, or TLS terminated here), holds them to the
//! connection limit and the timeouts, and relays their bytes to dropshot,
//! which listens on a loopback port of its own.
//!
//! dropshot binds its own socket and has no connection limit and no body,
//! idle or handshake timeout, so those live here, in front of it, in the
//! same process. Each client connection is one task that copies bytes both
//! ways through two small buffers; the rules are byte-level:
//!
//! - a *request is in progress* from the first byte the client sends after
//!   the server's last bytes until the server's next bytes; it may last at
//!   most [`Limits::request_timeout`];
//! - otherwise the connection may stay without a byte moving either way for
//!   at most [`Limits::idle_timeout`];
//! - a TLS handshake may take at most [`Limits::tls_handshake_timeout`];
//! - at [`Limits::max_connections`] the acceptor accepts a newcomer only by
//!   closing another, and otherwise waits for a connection to end, so
//!   accepting never runs out of file descriptors. It closes, first, the
//!   oldest of the connections whose client has sent nothing for at least
//!   [`SILENT_EVICTABLE_AFTER`] since it was accepted (or since its TLS
//!   handshake ended; a handshake in progress counts as nothing sent); then
//!   the quietest of those with no request in progress and no byte either
//!   way for at least [`EVICTABLE_AFTER`]; then, of those with a request in
//!   progress for at least [`EVICTABLE_AFTER`], the one whose request began
//!   first, among those still sending the request's head (no blank line
//!   yet: headers that stall or trickle in) before those whose head is
//!   complete (a body on its way, or a request waiting for its handler). A
//!   client sends its request as soon as it connects and a request is
//!   answered in milliseconds, so a flood of silent connections (even one
//!   queued in the kernel's backlog, which the acceptor drains at up to one
//!   connection limit's worth per [`SILENT_EVICTABLE_AFTER`]), or of
//!   connections trickling their headers a byte at a time, cannot keep a
//!   newcomer out for more than a second or so.
//!
//! A connection that dropshot upgrades (`101 Switching Protocols`: a
//! runner's WebSocket channel) leaves these rules: the channel holds to its
//! protocol's heartbeat timeout, and it is never evicted while it is open.
//! Once dropshot's side of any connection has closed, what is left (bytes
//! on their way to a client that may never read them) may take at most the
//! request timeout, and such a connection is the first to be evicted; the
//! same holds for a connection whose client reads none of the bytes the
//! server sends (a channel's included).
//!
//! Only HTTP/1.1 is served: TLS offers `http/1.1` alone in ALPN, and a
//! connection whose first bytes are HTTP/2's connection preface (plain,
//! with prior knowledge, or after TLS) is answered 505 and closed. Over
//! HTTP/2 the byte-level rules would not hold: a PING answered counts as
//! the server's bytes, so a stalled stream would never time out, and one
//! connection carries many streams. To tell, the relay holds back the
//! client's first bytes while they are a prefix of the preface (an
//! HTTP/1.1 request leaves it by its second byte at most, `PRI` aside).

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

mod accept;
mod limits;
mod relay;

pub use accept::Acceptor;
pub use limits::*;
use relay::relay;

/// Milliseconds since the acceptor started (0 means "never" where it
/// matters, so stored times are made at least 1).
type Millis = u64;

/// One client connection, as the accept loop and the shutdown see it.
struct Conn {
    /// When a byte last moved either way (or the connection was accepted,
    /// or its TLS handshake ended).
    last: AtomicU64,
    /// When the request in progress started, or 0 if none is.
    request: AtomicU64,
    /// The client has sent a byte (after the TLS handshake).
    spoke: AtomicBool,
    /// The request in progress has sent its whole head (its blank line).
    head: AtomicBool,
    /// Told to close (evicted, or shutting down).
    closing: AtomicBool,
    close: Notify,
    /// dropshot answered `101 Switching Protocols`: a runner's channel,
    /// which holds to its own protocol's timeouts (the heartbeat timeout),
    /// not to the request and idle timeouts, and is never evicted (each
    /// runner holds one at most).
    upgraded: AtomicBool,
    /// When dropshot's side ended (0: it has not): what is left is bytes on
    /// their way to the client, which may take at most the request timeout,
    /// and such a connection is the first to be evicted.
    server_gone: AtomicU64,
    /// Since when the server's bytes have waited for a client that reads
    /// none (0: they do not): at most the request timeout, then it is
    /// closed; such a connection is the first to be evicted.
    blocked: AtomicU64,
}

impl Conn {
    /// The client sent bytes at `now`: whether they begin a request.
    fn client_bytes(&self, now: Millis) -> bool {
        self.last.store(now, Relaxed);
        if self.request.load(Relaxed) != 0 {
            return false;
        }
        self.request.store(now, Relaxed);
        if self.head.load(Relaxed) {
            self.head.store(false, Relaxed);
        }
        if !self.spoke.load(Relaxed) {
            self.spoke.store(true, Relaxed);
        }
        true
    }

    /// The server sent bytes at `now`.
    fn server_bytes(&self, now: Millis) {
        self.last.store(now, Relaxed);
        self.request.store(0, Relaxed);
    }

    fn tell_to_close(&self) {
        self.closing.store(true, Relaxed);
        self.close.notify_one();
    }
}

/// What the accept loop and the connections share.
struct Shared {
    epoch: Instant,
    /// dropshot's loopback address.
    backend: SocketAddr,
    max_connections: usize,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// A connection ended (its slot is free).
    slot_freed: Notify,
    log: slog::Logger,
    /// When the last "at the connection limit" and accept or relay error
    /// warnings were logged (at most one a minute each, and one a second).
    warned_full: AtomicU64,
    warned_evicting: AtomicU64,
    warned_error: AtomicU64,
    /// Connections accepted, closed to admit a newcomer, and times the
    /// accept loop waited at the limit (the metrics).
    accepted: AtomicU64,
    evicted: AtomicU64,
    waits: AtomicU64,
}

/// The connections' counts, for the metrics.
#[derive(Clone)]
pub struct ConnectionStats(Arc<Shared>);

/// The connections open now, and the totals: accepted, closed to admit a
/// newcomer, and waits at the limit (a connection past the limit waits in
/// the listen backlog; none is refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub open: u64,
    pub accepted: u64,
    pub evicted: u64,
    pub waits_at_limit: u64,
}

impl ConnectionStats {
    pub fn counts(&self) -> ConnectionCounts {
        ConnectionCounts {
            open: u64::try_from(self.0.live()).unwrap_or(u64::MAX),
            accepted: self.0.accepted.load(Relaxed),
            evicted: self.0.evicted.load(Relaxed),
            waits_at_limit: self.0.waits.load(Relaxed),
        }
    }
}

impl Shared {
    fn now(&self) -> Millis {
        let ms = self.epoch.elapsed().as_millis();
        Millis::try_from(ms).unwrap_or(Millis::MAX).max(1)
    }

    fn at(&self, ms: Millis) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_millis(ms))
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> usize {
        self.conns().len()
    }

    /// The connection to close for a newcomer, if any (see the module's
    /// documentation): not closing already, and first the oldest silent
    /// one, then the quietest with no request in progress, then the one
    /// whose request began first, those still sending its head first.
    fn evictable(&self) -> Option<Arc<Conn>> {
        let now = self.now();
        let silent_since = now.saturating_sub(SILENT_EVICTABLE_AFTER.as_millis() as Millis);
        let quiet_since = now.saturating_sub(EVICTABLE_AFTER.as_millis() as Millis);
        self.conns()
            .values()
            .filter(|c| !c.closing.load(Relaxed))
            .filter_map(|c| {
                let gone = c.server_gone.load(Relaxed);
                if gone != 0 {
                    // The server is done with it: only its last bytes are
                    // left, for a client that may never read them.
                    return Some(((0, gone), c));
                }
                let blocked = c.blocked.load(Relaxed);
                if blocked != 0 && blocked <= quiet_since {
                    // A client that reads nothing the server sends.
                    return Some(((0, blocked), c));
                }
                if c.upgraded.load(Relaxed) {
                    return None;
                }
                let last = c.last.load(Relaxed);
                let key = if !c.spoke.load(Relaxed) {
                    (1, last)
                } else {
                    match c.request.load(Relaxed) {
                        0 => (2, last),
                        start => (3 + u8::from(c.head.load(Relaxed)), start),
                    }
                };
                let since = if key.0 == 1 {
                    silent_since
                } else {
                    quiet_since
                };
                (key.1 <= since).then_some((key, c))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, c)| Arc::clone(c))
    }

    /// Whether at most once in `every`, measured by `stamp`.
    fn once_in(&self, stamp: &AtomicU64, every: Duration) -> bool {
        let now = self.now();
        let last = stamp.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= every.as_millis() as Millis;
        due && stamp.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
    }

    /// The deadline of `conn` as it stands, and what it bounds.
    fn deadline(&self, conn: &Conn) -> (Millis, &'static str) {
        let ms = |d: Duration| Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX);
        let gone = conn.server_gone.load(Relaxed);
        if gone != 0 {
            return (
                gone.saturating_add(ms(self.limits.request_timeout)),
                "the last bytes of a closed connection were not read in time",
            );
        }
        let blocked = conn.blocked.load(Relaxed);
        let unread = blocked.saturating_add(ms(self.limits.request_timeout));
        if conn.upgraded.load(Relaxed) {
            return match blocked {
                0 => (Millis::MAX, "none"),
                _ => (unread, "the client read nothing the server sent in time"),
            };
        }
        let deadline = match conn.request.load(Relaxed) {
            0 => (
                conn.last
                    .load(Relaxed)
                    .saturating_add(ms(self.limits.idle_timeout)),
                "idle timeout",
            ),
            start => (
                start.saturating_add(ms(self.limits.request_timeout)),
                "request timeout",
            ),
        };
        if blocked != 0 && unread < deadline.0 {
            return (unread, "the client read nothing the server sent in time");
        }
        deadline
    }
}

/// Removes its connection from the registry when the connection's task ends
/// (or unwinds).
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.conns().remove(&self.id);
        self.shared.slot_freed.notify_one();
    }
}

#[cfg(test)]
mod tests;
