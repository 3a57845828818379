//! Unit tests of the acceptor's byte-level parts.

use super::relay::{HTTP2_REFUSED, HeadEnd};
use super::*;

#[test]
fn the_default_limit_leaves_room_for_the_reserve() {
    assert_eq!(connections_for_files(0), 1);
    assert_eq!(
        connections_for_files(FD_RESERVE + 3 * 50),
        50,
        "three files a connection after the reserve"
    );
    assert_eq!(
        default_max_connections(Some(u64::MAX)),
        MAX_CONNECTIONS_CEILING
    );
    assert_eq!(default_max_connections(None), MAX_CONNECTIONS_CEILING);
}

#[test]
fn the_http2_refusal_is_one_whole_answer() {
    let answer = std::str::from_utf8(HTTP2_REFUSED).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let length = format!("Content-Length: {}\r\n", body.len());
    assert!(head.contains(length.trim_end()), "{answer}");
}

#[test]
fn the_end_of_a_request_head_is_found_across_reads() {
    let ends = |pieces: &[&str]| {
        let mut head = HeadEnd::default();
        pieces.iter().any(|p| head.scan(p.as_bytes()))
    };
    assert!(ends(&["GET / HTTP/1.1\r\nHost: x\r\n\r\n"]));
    assert!(ends(&["GET / HTTP/1.1\r\nHost: x\r", "\n", "\r", "\nbody"]));
    assert!(ends(&["GET / HTTP/1.1\nHost: x\n\n"]));
    assert!(!ends(&[
        "GET / HTTP/1.1\r\nHost: x\r\n",
        "X-Slow: a\r\n\ra"
    ]));
    assert!(!ends(&["GET / HTTP/1.1\r\nHost: x\r\r\n"]));
}
