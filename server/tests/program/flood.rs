//! Memory under a channel that pings and never reads: the server's
//! resident set, read from `/proc`, stays bounded (issue 26: tungstenite's
//! write buffer had no bound, and each ping read queued a pong).

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::block_on;
use super::net::Net;
use super::network::stuck_channel;

/// The process's resident set, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A masked text frame of `text` (a mask of zeros: the payload as it is).
fn text_frame(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    frame.extend(text.as_bytes());
    frame
}

#[test]
fn a_channel_that_pings_and_never_reads_keeps_the_server_small() {
    let server = Net::start(&["--heartbeat-timeout=30"], None, false);
    let admin = runners_sdk::client_with_token(&server.url, &server.token).unwrap();
    let (runner, key) = block_on(runners_tests::create(&admin, "Flood", None));
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut stream = stuck_channel(&server, &runner.slug, &key);
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // 64 pings of 125 bytes a write, as fast as the server reads them, and
    // a heartbeat every second (it needs no answer: no write blocks).
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend([b'x'; 125]);
    let pings = ping.repeat(64);
    let heartbeat = text_frame(r#"{"event":"heartbeat"}"#);
    let start = Instant::now();
    let mut beat = Instant::now();
    let (mut sent, mut peak) = (0u64, before);
    while start.elapsed() < Duration::from_secs(6) {
        if stream.write_all(&pings).is_err() {
            break;
        }
        sent += pings.len() as u64;
        if beat.elapsed() >= Duration::from_secs(1) {
            stream.write_all(&heartbeat).unwrap();
            beat = Instant::now();
            peak = peak.max(rss_kib(pid));
        }
    }
    peak = peak.max(rss_kib(pid));
    println!(
        "sent {} MiB of pings in {:?}; server RSS {before} KiB before, peak {peak} KiB",
        sent >> 20,
        start.elapsed()
    );
    assert!(
        sent > 16 << 20,
        "the flood was too small to tell: {sent} bytes"
    );
    assert!(
        peak < before + 64 * 1024,
        "the server grew from {before} KiB to {peak} KiB under one channel's pings"
    );
    // It still answers.
    assert!(block_on(admin.runners_get().send()).is_ok());
}
