//! A Bencher-compatible runner registry: the Runners REST API of Bencher
//! (list, create, view, update runners and rotate a runner's token), served by
//! dropshot over one SQLite file.
//!
//! - [`api`]: the endpoints, declared once; the OpenAPI document comes from
//!   there ([`api::openapi_document`]).
//! - [`types`]: the wire types; [`validate`]: the contract's rules.
//! - [`store`]: the database, every SQL statement in one file.
//! - [`auth`]: API tokens (JWT) and runner tokens.
//! - [`error`]: the API error type and its conversion to HTTP.
//! - [`server`]: the implementation of the API and the running server.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod server;
pub mod store;
pub mod types;
pub mod validate;

pub use server::{Config, Server};
/// Levels of the request log.
pub use slog::Level as LogLevel;
pub use store::Store;
