//! The server crate's tests: the checked-in OpenAPI document, and the
//! `runners-server` program's interface, run as a separate process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `openapi.json` must be what the declarations produce. Regenerate it with
/// `EXPECTORATE=overwrite cargo test --workspace`.
#[test]
fn openapi_json_is_current() {
    let spec = runners_server::api::openapi_document();
    expectorate::assert_contents("../openapi.json", &spec);
}
