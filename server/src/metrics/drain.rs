//! The requests' metrics from dropshot's own record of each answered
//! request (`request completed`, with its status and latency; its method
//! and URI are the logger's values): every request, a credential or a path
//! refused before any handler included, whatever the log's level.

use std::fmt;
use std::sync::Arc;

use slog::{Drain, KV, Key, OwnedKVList, Record, Serializer};

use super::Metrics;

/// A drain that counts each `request completed` record, then hands every
/// record to `D`.
pub struct Metered<D> {
    pub inner: D,
    /// A panic while counting leaves nothing half-done that the log reads.
    pub metrics: std::panic::AssertUnwindSafe<Arc<Metrics>>,
}

/// The values of a `request completed` record that the metrics need.
#[derive(Default)]
struct Completed {
    method: String,
    uri: String,
    status: u16,
    latency_us: f64,
}

impl Serializer for Completed {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        match key.as_str() {
            "method" => self.method = val.to_string(),
            "uri" => self.uri = val.to_string(),
            "response_code" => self.status = val.to_string().parse().unwrap_or(0),
            "latency_us" => self.latency_us = val.to_string().parse().unwrap_or(0.0),
            _ => {}
        }
        Ok(())
    }
}

impl<D: Drain> Drain for Metered<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        if record.msg().as_str() == Some("request completed") {
            let mut completed = Completed::default();
            let _ = record.kv().serialize(record, &mut completed);
            let _ = values.serialize(record, &mut completed);
            if completed.status != 0 {
                self.metrics.request(
                    &completed.method,
                    &completed.uri,
                    completed.status,
                    completed.latency_us / 1e6,
                );
            }
        }
        self.inner.log(record, values)
    }
}
