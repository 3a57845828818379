//! A Bencher-compatible runner registry: the Runners REST API of Bencher
//! (list, create, view, update runners and rotate a runner's token), served by
//! dropshot over one SQLite file.
//!
//! Modules depend one way, from the bottom up.
//!
//! - [`types`]: the wire types; [`validate`]: the contract's rules;
//!   [`random`]: the CSPRNG.
//! - [`store`]: the database, with one async surface; every SQL statement
//!   is under it.
//! - [`auth`]: API tokens (JWT) and runner tokens.
//! - [`error`], [`extract`]: the HTTP edge (errors to HTTP, request bodies
//!   and queries); [`credential`]: the credentials a handler names in its
//!   signature ([`credential::AdminUser`], [`credential::RunnerAuth`]), which
//!   also give the OpenAPI document its `security`.
//! - [`api`]: the endpoints, declared once (the OpenAPI document comes from
//!   there, [`api::openapi_document`]); [`server`]: their implementation and
//!   the running server; [`acceptor`]: its front door (connection limit,
//!   timeouts, TLS), in front of dropshot.

pub mod acceptor;
pub mod api;
pub mod auth;
pub mod bmf;
pub mod channel;
pub mod console;
pub mod credential;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod random;
pub mod redact;
pub mod registry;
pub mod server;
pub mod store;
pub mod types;
pub mod validate;
pub mod views;

pub use acceptor::Limits;
pub use server::{Config, LogFormat, Server};
/// Levels of the request log.
pub use slog::Level as LogLevel;
pub use store::Store;
