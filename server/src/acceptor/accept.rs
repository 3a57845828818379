//! The accept loop, each connection's task from accept to close, and the
//! running acceptor's handle (start, stop, close every connection).

use super::*;

/// The running acceptor.
pub struct Acceptor {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// The listener on `bind`, made before anything else starts (so that a
    /// taken port fails the start early).
    pub async fn bind(bind: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(bind).await
    }

    /// Starts accepting on `listener`, relaying to `backend`, terminating
    /// TLS with `tls` if given.
    pub fn start(
        listener: TcpListener,
        backend: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
        max_connections: usize,
        log: slog::Logger,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            backend,
            max_connections: max_connections.max(1),
            limits,
            tls: tls.map(TlsAcceptor::from),
            conns: Mutex::default(),
            next_id: AtomicU64::new(0),
            slot_freed: Notify::new(),
            log,
            warned_full: AtomicU64::new(0),
            warned_evicting: AtomicU64::new(0),
            warned_error: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(Self {
            local_addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The public address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The connection limit in force.
    pub fn max_connections(&self) -> usize {
        self.shared.max_connections
    }

    /// Client connections open now.
    pub fn connections(&self) -> usize {
        self.shared.live()
    }

    /// Resolves only if the accept loop ends on its own (it never should:
    /// a panic), with what happened.
    pub async fn failed(&mut self) -> String {
        let Some(task) = &mut self.task else {
            return std::future::pending().await;
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(()) => "the acceptor stopped".to_owned(),
            Err(e) => format!("the acceptor stopped: {e}"),
        }
    }

    /// Stops accepting and closes the listener (connections open stay).
    pub async fn stop_accepting(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Closes every connection open now.
    pub fn close_all(&self) {
        for conn in self.shared.conns().values() {
            conn.tell_to_close();
        }
    }
}

impl Acceptor {
    /// Its connections' counts, for the metrics.
    pub fn stats(&self) -> super::ConnectionStats {
        super::ConnectionStats(Arc::clone(&self.shared))
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.close_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        // At the limit, accept only if a quiet connection can make room;
        // else wait for a slot (checking again as connections turn quiet).
        while shared.live() >= shared.max_connections && shared.evictable().is_none() {
            shared.waits.fetch_add(1, Relaxed);
            if shared.once_in(&shared.warned_full, Duration::from_secs(60)) {
                slog::warn!(
                    shared.log,
                    "at the connection limit ({}) and none can be closed yet: \
                     new connections wait",
                    shared.max_connections
                );
            }
            tokio::select! {
                () = shared.slot_freed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = &mut stop => return,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => return,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or memory, or a connection reset
                // before it was accepted: none of them ends the loop.
                if shared.once_in(&shared.warned_error, Duration::from_secs(1)) {
                    slog::warn!(shared.log, "accept error: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = &mut stop => return,
                }
                continue;
            }
        };
        let evicted = if shared.live() >= shared.max_connections {
            shared.evictable()
        } else {
            None
        };
        if let Some(quietest) = &evicted {
            if shared.once_in(&shared.warned_evicting, Duration::from_secs(60)) {
                slog::warn!(
                    shared.log,
                    "at the connection limit ({}): closing quiet connections to admit new ones",
                    shared.max_connections
                );
            }
            quietest.tell_to_close();
            shared.evicted.fetch_add(1, Relaxed);
        }
        shared.accepted.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            last: AtomicU64::new(shared.now()),
            request: AtomicU64::new(0),
            spoke: AtomicBool::new(false),
            head: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            upgraded: AtomicBool::new(false),
            server_gone: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
        });
        let id = shared.next_id.fetch_add(1, Relaxed);
        shared.conns().insert(id, Arc::clone(&conn));
        let registered = Registered {
            shared: Arc::clone(&shared),
            id,
        };
        tokio::spawn(serve(registered, conn, socket, peer));
        // Let the connection closed for this one end (and free its files)
        // before accepting the next: the limit holds while a backlog of
        // newcomers is worked through.
        if let Some(quietest) = evicted {
            let gone = tokio::time::Instant::now() + Duration::from_millis(100);
            while Arc::strong_count(&quietest) > 1 && tokio::time::Instant::now() < gone {
                tokio::select! {
                    () = shared.slot_freed.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = &mut stop => return,
                }
            }
        }
    }
}

/// One client connection, from accept to close.
async fn serve(registered: Registered, conn: Arc<Conn>, client: TcpStream, peer: SocketAddr) {
    let shared = &registered.shared;
    let _ = client.set_nodelay(true);
    tokio::select! {
        biased;
        () = conn.close.notified() => {}
        () = async {
            match &shared.tls {
                None => relay(shared, &conn, client, peer).await,
                Some(tls) => {
                    let timeout = shared.limits.tls_handshake_timeout;
                    match tokio::time::timeout(timeout, tls.accept(client)).await {
                        Ok(Ok(client)) => {
                            conn.last.store(shared.now(), Relaxed);
                            relay(shared, &conn, client, peer).await;
                        }
                        Ok(Err(e)) => slog::debug!(shared.log, "TLS handshake failed: {e}"),
                        Err(_) => slog::debug!(shared.log, "TLS handshake timed out"),
                    }
                }
            }
        } => {}
    }
}
