//! jumpcloud-scim: a SCIM 2.0 service provider in front of JumpCloud.
//!
//! # Layout
//! Reads are answered from an immutable in-memory snapshot of the directory that a background task
//! refreshes; writes go to JumpCloud first and are then published into the snapshot.
//!
//! A request passes `http` (the accept loop, the layer stack, authentication by `auth`, parsing with
//! `scim`), then `directory` (`Reader` chooses the snapshot a read sees; `Writer` carries a write to
//! `jumpcloud` and publishes it), then `cache` (`Store` is the one way a snapshot is published; `snapshot`
//! what a version holds). `mapping` is the only module that sees both SCIM and JumpCloud; `app` wires them
//! and owns the background work (`shutdown`).

// Functions stay under `too-many-lines-threshold` (clippy.toml) outside tests; tables say why they may not.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

/// Wiring from a validated configuration to a running service; owns the background tasks and stops them.
pub mod app;
/// The audit trail of client writes.
pub mod audit;
/// Client authentication (bearer tokens, Basic) and the `Principal` a request acts as.
pub mod auth;
/// The published snapshot: the one way to publish it (`Store`), what a version holds, refresh, persistence.
pub mod cache;
/// `check`: whether the configured JumpCloud URL and key work, in a few cheap calls.
pub mod check;
/// Layered configuration (defaults → TOML → `JCSCIM_*` environment), validated once; the only reader of env vars.
pub mod config;
/// What handlers call: reads through `Reader` (snapshot choice, pinned walks), writes through `Writer`.
pub mod directory;
/// In-memory JumpCloud API with fault injection, written from the facts sheet alone; used by tests and `demo`.
pub mod emulator;
/// Entry points shared by the fuzz targets in `fuzz/` and the corpus replay test; not an API.
#[doc(hidden)]
pub mod fuzzing;
/// The HTTP surface: router, layer stack, SCIM and operations handlers.
pub mod http;
/// JumpCloud's wire format and nothing else: DTOs, the paging HTTP client, the classified `JcError`, retries.
pub mod jumpcloud;
/// JumpCloud ↔ SCIM mapping; the only module that sees both worlds.
pub mod mapping;
/// Secrets re-read without a restart: on SIGHUP and when a secret file changes.
pub mod rotation;
/// SCIM 2.0 protocol core: schemas, filters, projection, paging, sorting, discovery, PATCH; pure, no IO.
pub mod scim;
/// A secret from the configuration: redacted in `Debug`, never part of an error.
pub mod secret;
/// Owned background work: the stop signal tasks watch, and the set the app awaits on shutdown.
pub mod shutdown;
/// Metrics registry rendered at `/metrics`, and the middleware that counts, times and logs each request.
pub mod telemetry;
