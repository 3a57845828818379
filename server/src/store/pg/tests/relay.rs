//! A relay between a test and its PostgreSQL, to freeze or cut the
//! database under a store.

use super::TestDb;

/// A TCP relay to the test's PostgreSQL that a test can freeze (bytes are
/// held, connections stay open: a server stopped with SIGSTOP, or a
/// partition) or cut (connections closed, new ones refused: a server
/// down).
pub(super) struct Relay {
    port: u16,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// Bytes pass (the start).
pub(super) const FLOWING: u8 = 0;
/// Bytes are held, connections stay open.
pub(super) const FROZEN: u8 = 1;
/// Connections are closed, new ones refused.
pub(super) const CUT: u8 = 2;

impl Relay {
    async fn to(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(FLOWING));
        let shared = std::sync::Arc::clone(&mode);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.load(Relaxed) == CUT {
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                for (mut from, mut to) in [(cr, sw), (sr, cw)].map(|(r, w)| (r, w)) {
                    let mode = std::sync::Arc::clone(&shared);
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0; 16 * 1024];
                        loop {
                            match mode.load(Relaxed) {
                                CUT => return,
                                FROZEN => {
                                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                                    continue;
                                }
                                _ => {}
                            }
                            let read = tokio::time::timeout(
                                std::time::Duration::from_millis(20),
                                from.read(&mut buf),
                            );
                            match read.await {
                                Err(_) => continue,
                                Ok(Ok(0) | Err(_)) => return,
                                Ok(Ok(n)) => {
                                    // Read just before a freeze: held too.
                                    loop {
                                        match mode.load(Relaxed) {
                                            CUT => return,
                                            FROZEN => {
                                                let pause = std::time::Duration::from_millis(20);
                                                tokio::time::sleep(pause).await;
                                            }
                                            _ => break,
                                        }
                                    }
                                    if to.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            }
        });
        Self { port, mode }
    }

    /// Flowing, frozen or cut from now on.
    pub(super) fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::Relaxed);
    }

    /// A relay to `db`'s server, and the URL of `db` through it.
    pub(super) async fn before(db: &TestDb) -> (Self, String) {
        let host = match &db.admin.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            #[allow(unreachable_patterns)]
            _ => "127.0.0.1".to_owned(),
        };
        let upstream = format!("{host}:{}", db.admin.get_ports()[0]);
        let upstream = tokio::net::lookup_host(upstream)
            .await
            .unwrap()
            .next()
            .unwrap();
        let relay = Self::to(upstream).await;
        let user = db.admin.get_user().unwrap_or("postgres");
        let url = format!("postgres://{user}@127.0.0.1:{}/{}", relay.port, db.name);
        (relay, url)
    }
}
