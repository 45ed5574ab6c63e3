//! jumpcloud-scim: a SCIM 2.0 service provider in front of JumpCloud.
//!
//! # Layout
//! Reads are answered from an immutable in-memory snapshot of the directory that a background task
//! refreshes; writes go to JumpCloud first and are then published into the snapshot.

/// In-memory JumpCloud API with fault injection, written from the facts sheet alone; used by tests and `demo`.
pub mod emulator;
/// SCIM 2.0 protocol core: schemas, filters, projection, paging, sorting, discovery, PATCH; pure, no IO.
pub mod scim;
