//! The acceptor's connections, this process's: open now, accepted, closed
//! to admit a newcomer at the limit (evicted), and waits at the limit (a
//! connection past it waits in the listen backlog: none is refused).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::acceptor::ConnectionCounts;

pub(super) struct ConnectionMetrics {
    open: Gauge,
    accepted: Counter,
    evicted: Counter,
    waits: Counter,
}

impl ConnectionMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let this = Self {
            open: Gauge::default(),
            accepted: Counter::default(),
            evicted: Counter::default(),
            waits: Counter::default(),
        };
        registry.register(
            "connections_open",
            "Client connections open",
            this.open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted",
            this.accepted.clone(),
        );
        registry.register(
            "connections_evicted",
            "Quiet connections closed to admit a new one at the connection limit",
            this.evicted.clone(),
        );
        registry.register(
            "connection_limit_waits",
            "Times the acceptor waited at the connection limit with none it could close",
            this.waits.clone(),
        );
        this
    }

    pub(super) fn update(&self, counts: ConnectionCounts) {
        let to = |c: &Counter, total: u64| {
            c.inc_by(total.saturating_sub(c.get()));
        };
        self.open
            .set(i64::try_from(counts.open).unwrap_or(i64::MAX));
        to(&self.accepted, counts.accepted);
        to(&self.evicted, counts.evicted);
        to(&self.waits, counts.waits_at_limit);
    }
}
