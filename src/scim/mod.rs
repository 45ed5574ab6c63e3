//! The SCIM 2.0 protocol core: pure functions over `serde_json::Value` resources, no IO.
//!
//! Owns the schemas this service provider serves, filter parsing and evaluation, attribute
//! projection, paging, sorting, list envelopes, discovery documents, PATCH and the SCIM error type.
//! Must not know JumpCloud: resources arrive as SCIM JSON (core attributes at the top level,
//! extension attributes under their URN), produced elsewhere. The filter and PATCH-path grammar is
//! the `scim_v2` crate's; this module only evaluates what it parses.

pub mod error;
pub mod filter;
pub mod schema;

pub use error::ScimError;
pub use filter::{CompiledFilter, IndexHint};
pub use schema::{ResourceKind, SchemaRegistry};
