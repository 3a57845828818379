//! The acceptor's limits: their defaults, and what the open-file limit
//! leaves room for.

use super::*;

/// How long a TLS handshake may take, unless told otherwise.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take from its first byte until the server starts
/// answering, unless told otherwise (the database's busy timeout, 5 s,
/// bounds the handlers well below it).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay with no request in progress and no byte
/// moving, unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a shutdown waits for in-flight requests, unless told otherwise.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection whose client has sent something is closed to make room for
/// a newcomer only once no byte has moved on it either way for this long.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);
/// A connection whose client has sent nothing yet may be closed to make
/// room for a newcomer once it is this old.
pub const SILENT_EVICTABLE_AFTER: Duration = Duration::from_millis(250);
/// File descriptors each client connection costs: the client's socket, the
/// relay's socket to dropshot, and dropshot's side of it.
pub const FDS_PER_CONNECTION: u64 = 3;
/// File descriptors kept for everything but client connections: the
/// database (each pooled connection holds the file, its `-wal` and its
/// `-shm`), the two listeners, the runtime, stdio, and a margin.
pub const FD_RESERVE: u64 = 64 + 3 * (crate::store::POOL_SIZE as u64 + 2);
/// The default connection limit never exceeds this, however high the file
/// limit (each connection also costs memory: buffers, TLS and HTTP state).
pub const MAX_CONNECTIONS_CEILING: usize = 10_000;
/// Each direction of a relay copies through a buffer this large.
pub(super) const BUFFER_BYTES: usize = 8 * 1024;

/// The acceptor's limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Concurrent client connections; `None`: derived from the file limit
    /// ([`default_max_connections`]).
    pub max_connections: Option<usize>,
    /// The longest a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// The longest from a request's first byte until the server starts
    /// answering.
    pub request_timeout: Duration,
    /// The longest a connection may stay with no request in progress and no
    /// byte moving either way.
    pub idle_timeout: Duration,
    /// The longest a shutdown waits for in-flight requests before it closes
    /// every connection.
    pub shutdown_timeout: Duration,
    /// Writes that may wait for the database writer at once; more are
    /// refused at once with 503 (see [`crate::store::Store::open_with`]).
    pub write_queue: usize,
    /// The longest a runner's channel may stay without a message (while
    /// idle, or running a job: the job then fails).
    pub heartbeat_timeout: Duration,
    /// How long past its timeout a running job may go before it is
    /// canceled.
    pub job_timeout_grace: Duration,
}

/// The default heartbeat timeout of a runner's channel.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);
/// The grace past a job's timeout (Bencher's).
pub const DEFAULT_JOB_TIMEOUT_GRACE: Duration = Duration::from_secs(60);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: None,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            write_queue: crate::store::WRITE_QUEUE_DEFAULT,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            job_timeout_grace: DEFAULT_JOB_TIMEOUT_GRACE,
        }
    }
}

/// The soft limit on open files, after raising it to the hard limit (as Go
/// does at start): `None` where it cannot be read.
pub fn raise_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // The soft limit raised to the hard one (on macOS to at most
        // kern.maxfilesperproc, which setrlimit would refuse to pass); if
        // it cannot be raised, as it was.
        rlimit::increase_nofile_limit(u64::MAX)
            .or_else(|_| rlimit::Resource::NOFILE.get().map(|(soft, _)| soft))
            .ok()
    }
    #[cfg(not(unix))]
    None
}

/// The most connections a file limit of `files` leaves room for (at least
/// one): ([`FDS_PER_CONNECTION`] each, after [`FD_RESERVE`]).
pub fn connections_for_files(files: u64) -> usize {
    let room = files.saturating_sub(FD_RESERVE) / FDS_PER_CONNECTION;
    usize::try_from(room).unwrap_or(usize::MAX).max(1)
}

/// The default connection limit for a file limit of `files` (unknown:
/// [`MAX_CONNECTIONS_CEILING`]).
pub fn default_max_connections(files: Option<u64>) -> usize {
    files
        .map(connections_for_files)
        .unwrap_or(usize::MAX)
        .min(MAX_CONNECTIONS_CEILING)
}
