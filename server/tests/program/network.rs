//! The server on a hostile network, against the `runners-server` binary
//! under a low open-file limit (256, where the attack was found): idle
//! connections, stalled request bodies and TLS handshakes that never end
//! do not lock a client out, nor do connections trickling their headers a
//! byte at a time, nor can one runner's key with channels whose clients
//! read nothing; the timeouts close them; HTTP/2 (which would escape them)
//! is refused; SIGTERM exits within the shutdown timeout while they are
//! open; a closed stderr never leaves a live process that does not listen.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::block_on;
use super::net::Net;

/// The open-file limit the server runs under.
pub(super) const FILES: u32 = 256;

/// Headers of a request whose 500-byte body never comes.
/// The headers of an admin's create with a body that never comes (with the
/// admin's token: a request without a valid credential is answered 401 at
/// once, its body unread).
fn stalled_create(token: &str) -> Vec<u8> {
    format!(
        "POST /v0/runners HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    )
    .into_bytes()
}

/// The HTTP/2 connection preface (RFC 9113, section 3.4) and an empty
/// SETTINGS frame: how an HTTP/2 client with prior knowledge begins.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// How long until the server closes `stream` (reading and dropping what it
/// sends); fails if it is still open after `max`.
fn closed_after(stream: &mut TcpStream, max: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0; 4096];
    loop {
        let left = max
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still open after {max:?}")
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Sends `GET /v0/server/version` on `stream` (keeping it alive) and reads
/// the whole answer: its status line.
fn version(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /v0/server/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    // The answer is small: its headers and its JSON body end with `}`.
    while !answer.ends_with(b"}") {
        let n = stream.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8(answer).unwrap();
    answer.lines().next().unwrap().to_owned()
}

#[test]
fn hundreds_of_idle_and_stalled_connections_leave_room_for_a_client_and_sigterm() {
    let mut server = Net::start(&["--shutdown-timeout=2"], None, false);
    assert!(server.list() < Duration::from_secs(1));
    // 300 connections, more than 256 files allow (each costs the server
    // up to 3): a third stalls a request body, the rest send nothing.
    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = server.connect();
        if i % 3 == 0 {
            stream.write_all(&stalled_create(&server.token)).unwrap();
        }
        held.push(stream);
    }
    // A client still gets its answer, at once or nearly (the acceptor first
    // works through the connections queued before it).
    let took = server.list();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // More of them, while every slot is held: a newcomer is served at once.
    for _ in 0..100 {
        held.push(server.connect());
    }
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        let took = server.list();
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
    // SIGTERM with all of them open: exit 0 within the shutdown timeout
    // (2 s) and a little, with the database closed cleanly.
    let (status, took) = server.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(server.closed_cleanly());
    drop(held);
}

#[test]
fn tls_handshakes_that_never_end_leave_room_for_a_client_and_sigterm() {
    // The key readable by others: served, with a warning.
    let mut server = Net::start(
        &["--shutdown-timeout=2", "--tls-handshake-timeout=1"],
        Some(0o644),
        false,
    );
    let banner = server.banner.join("\n");
    assert!(
        banner.contains("is readable by group or others (mode 0644)"),
        "{banner}"
    );
    assert!(server.list() < Duration::from_secs(1));

    // A handshake that never ends is closed after its timeout (1 s).
    let silent = server.connect();
    let mut begun = server.connect();
    // A TLS record header announcing a 512-byte ClientHello, and no more.
    begun.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let watched: Vec<_> = [silent, begun]
        .into_iter()
        .map(|mut stream| {
            std::thread::spawn(move || closed_after(&mut stream, Duration::from_secs(4)))
        })
        .collect();
    for watched in watched {
        let took = watched.join().unwrap();
        assert!(took > Duration::from_millis(700), "took {took:?}");
    }

    // 300 of them at once, under 256 files: a client still gets in.
    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = server.connect();
        if i % 2 == 0 {
            stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        }
        held.push(stream);
    }
    let took = server.list();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let (status, took) = server.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(server.closed_cleanly());
    drop(held);

    // An owner-only key: no warning.
    let server = Net::start(&[], Some(0o600), false);
    assert!(
        !server
            .banner
            .join("\n")
            .contains("readable by group or others"),
        "{:?}",
        server.banner
    );
}

/// With an idle timeout longer than the request timeout, a request that
/// stalls is still closed after the request timeout: on a fresh connection
/// (whose timer was set for idleness before the first byte came) and on one
/// kept alive after an answer.
#[test]
fn a_stalled_request_is_closed_after_the_request_timeout_whatever_the_idle_timeout() {
    let server = Net::start(&["--idle-timeout=10", "--request-timeout=1"], None, false);
    let stall = |mut stream: TcpStream| {
        stream.write_all(&stalled_create(&server.token)).unwrap();
        std::thread::spawn(move || closed_after(&mut stream, Duration::from_secs(6)))
    };
    let fresh = stall(server.connect());
    let mut waited = server.connect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(version(&mut waited), "HTTP/1.1 200 OK");
    let kept = stall(waited);
    for (what, closed) in [("fresh", fresh), ("kept alive", kept)] {
        let took = closed.join().unwrap();
        assert!(
            took > Duration::from_millis(700) && took < Duration::from_millis(2500),
            "{what}: a stalled request closed after {took:?}"
        );
    }
}

#[test]
fn idle_connections_and_stalled_requests_are_closed_after_their_timeouts() {
    let server = Net::start(&["--idle-timeout=1", "--request-timeout=1.5"], None, false);
    // How long until the server closes a stream, watched from now.
    let watch = |mut stream: TcpStream| {
        std::thread::spawn(move || closed_after(&mut stream, Duration::from_secs(5)))
    };
    let within = |took: Duration, low: u64, high: u64, what: &str| {
        let (low, high) = (Duration::from_millis(low), Duration::from_millis(high));
        assert!(took > low && took < high, "{what}: closed after {took:?}");
    };
    // Nothing sent: closed after the idle timeout.
    let idle = watch(server.connect());
    // A request answered, then nothing: closed the same.
    let mut kept = server.connect();
    assert_eq!(version(&mut kept), "HTTP/1.1 200 OK");
    let kept = watch(kept);
    // Headers and no body: closed after the request timeout.
    let mut stalled = server.connect();
    stalled.write_all(&stalled_create(&server.token)).unwrap();
    let stalled = watch(stalled);
    // Headers a byte every 100 ms, never ending: bytes move, but the
    // request never completes, so it is closed after the request timeout.
    let mut dribble = server.connect();
    let dribbling = std::thread::spawn(move || {
        let start = Instant::now();
        for byte in b"GET /v0/server/version HTTP/1.1\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if dribble.write_all(&[*byte]).is_err() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
            assert!(start.elapsed() < Duration::from_secs(5), "still open");
        }
        unreachable!()
    });
    // A connection with a request every 400 ms stays open past both.
    let mut busy = server.connect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        assert_eq!(version(&mut busy), "HTTP/1.1 200 OK");
        std::thread::sleep(Duration::from_millis(400));
    }
    within(idle.join().unwrap(), 800, 2500, "idle");
    within(kept.join().unwrap(), 800, 2500, "idle after an answer");
    within(stalled.join().unwrap(), 1300, 3000, "stalled body");
    // (A write fails only once the close is seen: a little later.)
    within(
        dribbling.join().unwrap(),
        1300,
        3500,
        "never-ending headers",
    );
}

#[test]
fn a_closed_stderr_never_leaves_a_live_process_that_does_not_listen() {
    // The request log is on (info): every request writes a line to stderr,
    // whose pipe is closed once the server listens.
    let mut server = Net::start(&[], None, true);
    for i in 0..30 {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(!status.success(), "a failure exits non-zero");
            return;
        }
        let mut stream = server.connect();
        assert_eq!(version(&mut stream), "HTTP/1.1 200 OK", "request {i}");
        assert!(server.list() < Duration::from_secs(2), "request {i}");
    }
    let (status, _) = server.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(server.closed_cleanly());
}

/// Everything the server sends on `stream` until it closes it; fails if it
/// is still open after `max` (the stream's read timeout must be set).
fn read_until_closed(stream: &mut impl Read, max: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    loop {
        assert!(
            start.elapsed() < max,
            "still open after {max:?}: {answer:?}"
        );
        match stream.read(&mut buf) {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ) =>
            {
                return answer;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Whether `answer` is the acceptor's refusal of HTTP/2.
fn refused_http2(answer: &[u8]) -> bool {
    answer.starts_with(b"HTTP/1.1 505 ")
}

#[test]
fn http2_is_refused_in_plain_and_tls_alpn_selects_http1() {
    use rustls::pki_types::pem::PemObject as _;
    // Plain: HTTP/2 with prior knowledge (the preface) is answered 505 and
    // closed at once; never an HTTP/2 frame.
    let server = Net::start(&[], None, false);
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream.write_all(H2_PREFACE).unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(3));
    assert!(
        refused_http2(&answer),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // The preface alone, a byte at a time, the same (once it is whole).
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for byte in &H2_PREFACE[..24] {
        stream.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = read_until_closed(&mut stream, Duration::from_secs(3));
    assert!(refused_http2(&answer), "{answer:?}");
    // HTTP/1.1 requests that begin like the preface, sent in pieces, reach
    // the server whole.
    for (first, rest) in [
        (
            "P",
            "OST /v0/runners HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        ),
        ("PRI * HTTP/1", ".1\r\nHost: x\r\n\r\n"),
    ] {
        let mut stream = server.connect();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.write_all(first.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(rest.as_bytes()).unwrap();
        let mut answer = [0; 12];
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.read_exact(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 4"), "{first}: {answer:?}");
    }
    let mut kept = server.connect();
    assert_eq!(version(&mut kept), "HTTP/1.1 200 OK");
    drop(server);

    // TLS: a client offering h2 and http/1.1 gets http/1.1 and is served;
    // one offering h2 alone fails its handshake; the preface after a
    // handshake is refused like in plain.
    let server = Net::start(&[], Some(0o600), false);
    let tls = |alpn: &[&[u8]]| {
        let mut roots = rustls::RootCertStore::empty();
        let ca = server.ca.as_deref().unwrap();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let socket = server.connect();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        rustls::StreamOwned::new(conn, socket)
    };
    let handshake = |stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
        let start = Instant::now();
        while stream.conn.is_handshaking() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "handshake stalled"
            );
            match stream.conn.complete_io(&mut stream.sock) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    let mut stream = tls(&[b"h2", b"http/1.1"]);
    handshake(&mut stream).unwrap();
    assert_eq!(
        stream.conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "the protocol negotiated"
    );
    stream
        .write_all(b"GET /v0/server/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5));
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"), "{answer:?}");

    let mut stream = tls(&[b"h2"]);
    let refused = handshake(&mut stream);
    assert!(
        refused.is_err(),
        "h2 alone negotiated {:?}",
        stream.conn.alpn_protocol()
    );

    for alpn in [&[][..], &[&b"http/1.1"[..]][..]] {
        let mut stream = tls(alpn);
        handshake(&mut stream).unwrap();
        stream.write_all(H2_PREFACE).unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(3));
        assert!(refused_http2(&answer), "{alpn:?}: {answer:?}");
    }
    assert!(server.list() < Duration::from_secs(1));
}

#[test]
fn slowloris_connections_trickling_headers_do_not_keep_a_client_out() {
    // 64 connections, more than the limit under 256 files (54), each
    // sending a header byte every 300 ms (bytes always move, no request
    // ever ends), reopened as soon as the server closes one.
    let server = Net::start(&[], None, false);
    assert!(server.list() < Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let attack = {
        let (stop, addr) = (Arc::clone(&stop), server.addr);
        std::thread::spawn(move || {
            let head = b"GET /v0/server/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            let open = || {
                let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
                stream.set_nonblocking(true).unwrap();
                Some((stream, 0))
            };
            let mut held: Vec<Option<(TcpStream, usize)>> = (0..64).map(|_| open()).collect();
            let mut reopened = 0;
            while !stop.load(Ordering::Relaxed) {
                for slot in &mut held {
                    let Some((stream, sent)) = slot else {
                        *slot = open();
                        continue;
                    };
                    let byte = head.get(*sent).copied().unwrap_or(b'a');
                    match stream.write(&[byte]) {
                        Ok(_) => *sent += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => {
                            *slot = open();
                            reopened += 1;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            reopened
        })
    };
    // Every slot held, each request well past a second.
    std::thread::sleep(Duration::from_millis(2000));
    for _ in 0..3 {
        let took = server.list();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    let reopened = attack.join().unwrap();
    // The attack held every slot: connections were closed to let the
    // client in.
    assert!(reopened > 0, "no connection was closed");
}

/// `runner`'s channel, opened by hand on a socket with a 2 KiB receive
/// buffer that is never read, then flooded with pings for up to 200 ms:
/// their pongs soon wait for a client that reads none of them.
pub(super) fn stuck_channel(server: &Net, runner: &str, key: &str) -> TcpStream {
    let mut stream = block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    let upgrade = format!(
        "GET /v0/runners/{runner}/channel HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {key}\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The answer's head, a byte at a time: nothing after it is read.
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("the upgrade's answer");
        assert!(n == 1, "closed during the upgrade: {head:?}");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // 64 masked pings of 125 bytes a write (FIN and the ping opcode, the
    // mask bit and the length, a mask of zeros: the payload as it is).
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend([b'x'; 125]);
    let pings = ping.repeat(64);
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        if stream.write_all(&pings).is_err() {
            break;
        }
    }
    stream
}

#[test]
fn one_runner_key_cannot_hold_every_connection_slot_with_channels_that_read_nothing() {
    // Each new channel of a runner replaces the one before; the replaced
    // one's close, like the pongs, waits for a client that never reads.
    let server = Net::start(
        &[
            "--max-connections=8",
            "--heartbeat-timeout=3",
            "--request-timeout=2",
        ],
        None,
        false,
    );
    let admin = runners_sdk::client_with_token(&server.url, &server.token).unwrap();
    let (runner, key) = block_on(runners_tests::create(&admin, "Stuck", None));
    let held: Vec<TcpStream> = (0..8)
        .map(|_| stuck_channel(&server, &runner.slug, &key))
        .collect();
    // Every slot is held by one runner's channels: an admin still gets an
    // answer within a few seconds (those connections are evicted first, or
    // closed after the request timeout).
    let options = runners_sdk::ClientOptions {
        timeout: Duration::from_secs(5),
        ca_pem: None,
    };
    for round in 0..3 {
        // A new client each time (its connections belong to one runtime).
        let client =
            runners_sdk::client_with_options(&server.url, &server.token, &options).unwrap();
        let start = Instant::now();
        let answer = block_on(client.runners_get().send());
        let took = start.elapsed();
        assert!(
            answer.is_ok(),
            "round {round}: no answer to an admin after {took:?}: {answer:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "round {round}: took {took:?}"
        );
    }
    drop(held);
}
