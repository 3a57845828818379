//! End-to-end tests: each starts the real server on 127.0.0.1:0 with a fresh
//! SQLite file and drives it through the generated SDK (and, for requests the
//! typed SDK cannot express, through the SDK's own HTTP client). One module
//! a topic; the helpers they share are in `runners_tests`.

mod audit;
mod auth;
mod channel;
mod console;
mod create;
mod credentials;
mod events;
mod hostile;
mod job_lists;
mod jobs;
mod listing;
mod malformed;
mod metrics;
mod private_images;
mod replicas;
mod requeue;
mod runner_specs;
mod runs;
mod server;
mod specs;
mod storage;
mod tls;
mod tokens;
mod update;
