//! The systemd unit in `deploy/`: `systemd-analyze verify` with the built
//! binary where its `ExecStart` names it, and readiness by `sd_notify`
//! (`READY=1` once the listener is up, `STOPPING=1` at shutdown) on a
//! `NOTIFY_SOCKET` of the test's own.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::*;

#[test]
fn the_unit_verifies_with_the_built_binary() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/runners-server.service"
    );
    let text = std::fs::read_to_string(unit).unwrap();
    let exec = "ExecStart=/usr/local/bin/runners-server ";
    assert!(
        text.contains(exec),
        "the unit's ExecStart names /usr/local/bin/runners-server"
    );
    for hardened in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=runners-server",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(text.lines().any(|l| l == hardened), "{hardened}");
    }
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("runners-server.service");
    std::fs::write(&here, text.replace(exec, &format!("ExecStart={BIN} "))).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&here)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

#[test]
fn the_server_tells_systemd_it_is_ready_once_it_listens_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let env = vec![("NOTIFY_SOCKET", socket_path.display().to_string())];
    let mut server = Serving::start_with_env(env);
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a READY=1 datagram");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message}");
    assert!(
        message.contains(&format!("STATUS=listening on {}", server.url)),
        "{message}"
    );
    // Ready means serving: the very next request is answered.
    let (status, _) = server.call("GET", "/v0/server/ready", "", None);
    assert_eq!(status, 200);
    assert!(server.terminate().success());
    let n = socket.recv(&mut buf).expect("a STOPPING=1 datagram");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "STOPPING=1");
}
