//! One connection's relay: bytes both ways between the client and
//! dropshot, the byte-level rules, and HTTP/2's refusal.

use super::*;

/// Relays between `client` and dropshot until either closes or a limit
/// ends it.
pub(super) async fn relay<C: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    conn: &Conn,
    mut client: C,
    peer: SocketAddr,
) {
    let mut server = match TcpStream::connect(shared.backend).await {
        Ok(server) => server,
        Err(e) => {
            if shared.once_in(&shared.warned_error, Duration::from_secs(1)) {
                slog::error!(shared.log, "cannot reach the HTTP server: {e}");
            }
            return;
        }
    };
    let _ = server.set_nodelay(true);
    // dropshot's request log sees the relay's loopback address: this line
    // ties it to the client's own.
    if let Ok(local) = server.local_addr() {
        slog::info!(shared.log, "relaying a client"; "client_addr" => %peer, "relayed_from" => %local);
    }
    let mut up = Pipe::new();
    let mut down = Pipe::new();
    let mut up_done = false;
    // Until the client's first bytes leave HTTP/2's preface.
    let mut sniffing = true;
    let mut head = HeadEnd::default();
    let mut status = StatusLine::default();
    let copy = poll_fn(|cx| {
        if !up_done {
            match up.poll_copy(
                cx,
                &mut client,
                &mut server,
                |held, new| {
                    if new.is_empty() {
                        return Verdict::Forward;
                    }
                    if conn.client_bytes(shared.now()) {
                        head = HeadEnd::default();
                    }
                    if !head.done && head.scan(new) {
                        conn.head.store(true, Relaxed);
                    }
                    if sniffing {
                        let n = held.len().min(H2_PREFACE.len());
                        if held[..n] != H2_PREFACE[..n] {
                            sniffing = false;
                        } else if n == H2_PREFACE.len() {
                            return Verdict::Refuse;
                        } else {
                            return Verdict::Hold;
                        }
                    }
                    Verdict::Forward
                },
                |_| {},
            ) {
                Poll::Ready(Ok(Copied::Ended)) => up_done = true,
                Poll::Ready(Ok(Copied::Refused)) => return Poll::Ready(Ok(Copied::Refused)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        // dropshot's end ends the connection, once its last bytes are out.
        let mut read = false;
        let copied = down.poll_copy(
            cx,
            &mut server,
            &mut client,
            |_, new| {
                if new.is_empty() {
                    conn.server_gone.store(shared.now(), Relaxed);
                } else {
                    read = true;
                    // The first bytes after a request began start its answer.
                    if conn.request.load(Relaxed) != 0 {
                        status = StatusLine::default();
                    }
                    if status.scan(new) {
                        conn.upgraded.store(true, Relaxed);
                    }
                    conn.server_bytes(shared.now());
                }
                Verdict::Forward
            },
            |progress| {
                if progress {
                    conn.blocked.store(0, Relaxed);
                } else if conn.blocked.load(Relaxed) == 0 {
                    conn.blocked.store(shared.now(), Relaxed);
                }
            },
        );
        if read {
            quick_ack(&server);
        }
        copied
    });
    let refused = tokio::select! {
        copied = copy => matches!(copied, Ok(Copied::Refused)),
        why = watchdog(shared, conn) => {
            slog::debug!(shared.log, "closing a connection: {why}");
            false
        }
    };
    if refused {
        slog::debug!(shared.log, "refusing an HTTP/2 connection");
        drop(server);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            client.write_all(HTTP2_REFUSED).await?;
            client.shutdown().await
        })
        .await;
    }
}

/// How an HTTP/2 connection begins (RFC 9113, section 3.4).
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The answer to an HTTP/2 connection (which a client that speaks only
/// HTTP/2 cannot read, but then it fails at once, and a person sees why).
pub(super) const HTTP2_REFUSED: &[u8] = b"HTTP/1.1 505 HTTP Version Not Supported\r\n\
    Content-Type: text/plain\r\nContent-Length: 37\r\nConnection: close\r\n\r\n\
    HTTP/2 is not served: use HTTP/1.1.\r\n";
/// The longest the refusal may take to write.
pub(super) const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Finds the end of a request's head, the blank line (CRLF CRLF, or bare
/// LFs, which HTTP/1.1 servers accept too), across reads.
#[derive(Default)]
pub(super) struct HeadEnd {
    /// 1: just after a line's LF; 2: after that and a CR.
    state: u8,
    done: bool,
}

impl HeadEnd {
    /// Scans `bytes`: whether the head ends in them.
    pub(super) fn scan(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            self.state = match (b, self.state) {
                (b'\n', 0) => 1,
                (b'\n', _) => {
                    self.done = true;
                    return true;
                }
                (b'\r', 1) => 2,
                _ => 0,
            };
        }
        false
    }
}

/// Tells an answer that switches protocols (a WebSocket upgrade) by its
/// status line's start, across reads.
#[derive(Default)]
pub(super) struct StatusLine {
    /// Bytes of [`SWITCHING`] matched so far.
    matched: usize,
    /// The start did not match.
    other: bool,
}

/// How dropshot's (hyper's) `101 Switching Protocols` begins.
const SWITCHING: &[u8] = b"HTTP/1.1 101 ";

impl StatusLine {
    /// Scans an answer's `bytes`: whether they complete a `101` status.
    pub(super) fn scan(&mut self, bytes: &[u8]) -> bool {
        if self.other || self.matched == SWITCHING.len() {
            return false;
        }
        for &b in bytes {
            if b != SWITCHING[self.matched] {
                self.other = true;
                return false;
            }
            self.matched += 1;
            if self.matched == SWITCHING.len() {
                return true;
            }
        }
        false
    }
}

/// Resolves when `conn` passes its deadline, with which deadline it was.
pub(super) async fn watchdog(shared: &Shared, conn: &Conn) -> &'static str {
    loop {
        let (deadline, why) = shared.deadline(conn);
        let now = shared.now();
        if now >= deadline {
            return why;
        }
        // A request may begin while this sleeps (nothing wakes it then): so
        // sleep no longer than a request may last from now, and a request
        // that began meanwhile is met at its own deadline or before.
        let request =
            Millis::try_from(shared.limits.request_timeout.as_millis()).unwrap_or(Millis::MAX);
        let wake = deadline.min(now.saturating_add(request));
        tokio::time::sleep_until(shared.at(wake)).await;
    }
}

/// What to do with the bytes a read brought.
pub(super) enum Verdict {
    /// Write them (and any held).
    Forward,
    /// Keep them, with any held, and read more.
    Hold,
    /// Stop copying.
    Refuse,
}

/// How a copy ended.
pub(super) enum Copied {
    /// The reading side ended and its bytes are out.
    Ended,
    /// A read was refused.
    Refused,
}

/// One direction of a relay: a buffer, and how far it has got.
pub(super) struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    unflushed: bool,
    /// Bytes held back (`buf[start..end]`, not to be written yet).
    holding: bool,
}

impl Pipe {
    fn new() -> Self {
        Self {
            buf: vec![0; BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            unflushed: false,
            holding: false,
        }
    }

    /// Copies from `from` to `to` until `from` ends (then shuts `to`'s
    /// writing down) or `read` refuses, telling `read` the bytes held and
    /// just read (`buf[start..end]`), and the bytes just read (none at the
    /// end).
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
        mut read: impl FnMut(&[u8], &[u8]) -> Verdict,
        mut wrote: impl FnMut(bool),
    ) -> Poll<io::Result<Copied>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if (self.start == self.end || self.holding) && !self.eof {
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                let mut buf = ReadBuf::new(&mut self.buf[self.end..]);
                match Pin::new(&mut *from).poll_read(cx, &mut buf) {
                    Poll::Pending => {
                        if self.unflushed {
                            ready!(Pin::new(&mut *to).poll_flush(cx))?;
                            self.unflushed = false;
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(result) => {
                        result?;
                        let n = buf.filled().len();
                        let (held, new) = (self.start, self.end);
                        self.end += n;
                        self.eof = n == 0;
                        let bytes = &self.buf[held..self.end];
                        match read(bytes, &self.buf[new..self.end]) {
                            Verdict::Forward => self.holding = false,
                            // The end, or a full buffer, forwards what is held.
                            Verdict::Hold => {
                                self.holding = !self.eof && self.end < self.buf.len();
                                if self.holding {
                                    continue;
                                }
                            }
                            Verdict::Refuse => return Poll::Ready(Ok(Copied::Refused)),
                        }
                    }
                }
            }
            while self.start < self.end {
                let written = Pin::new(&mut *to).poll_write(cx, &self.buf[self.start..self.end]);
                // Bytes wait for a reader that takes none: told, so that
                // the watchdog can bound it.
                wrote(written.is_ready());
                let n = ready!(written)?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                self.unflushed = true;
            }
            if self.eof {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                return Poll::Ready(Ok(Copied::Ended));
            }
        }
    }
}

/// Acknowledges what dropshot sent at once (Linux's `TCP_QUICKACK`, which
/// the kernel turns off again by itself, so it is set after each read: at
/// the end of the poll that read, before the relay waits again).
/// dropshot leaves Nagle's algorithm on for the loopback connections it
/// accepts: a small frame it sends while an earlier one is unacknowledged
/// waits for that ACK, which the receiving side delays by up to 40 ms. A
/// channel's `cancel` right after an `ack` took 40 ms to leave; with the
/// ACK sent at once, it leaves at once.
fn quick_ack(server: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(server).set_tcp_quickack(true);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = server;
}
