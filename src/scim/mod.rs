//! The SCIM 2.0 protocol core: pure functions over `serde_json::Value` resources, no IO.
//!
//! Owns the schemas this service provider serves, filter parsing and evaluation, attribute
//! projection, paging, sorting, list envelopes, discovery documents, PATCH and the SCIM error type.
//! Must not know JumpCloud: resources arrive as SCIM JSON (core attributes at the top level under
//! their schema spelling, extension attributes in an object under their URN, `schemas` listing the
//! URNs present), produced elsewhere. The filter and PATCH-path grammar is the `scim_v2` crate's;
//! this module only evaluates what it parses.
//!
//! A list request, end to end:
//! [`QueryParams`](crate::scim::list::QueryParams) from the query string or
//! [`from_search_body`](crate::scim::list::QueryParams::from_search_body) →
//! [`Query::parse`](crate::scim::list::Query::parse) → candidates from
//! [`index_hint`](crate::scim::filter::CompiledFilter::index_hint) or a scan, kept by
//! [`matches`](crate::scim::filter::CompiledFilter::matches) →
//! [`SortSpec::sort`](crate::scim::sort::SortSpec::sort) →
//! [`Paging::window`](crate::scim::paging::Paging::window) →
//! [`AttrSelection::project`](crate::scim::attrs::AttrSelection::project) →
//! [`list_response`](crate::scim::list::list_response).

pub mod attrs;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod list;
pub mod paging;
pub mod patch;
pub mod reference;
pub mod schema;
pub mod sort;
pub mod tape;
pub mod view;

pub use attrs::AttrSelection;
pub use error::{ERROR_URN, SCIM_CONTENT_TYPE, ScimError};
pub use filter::{CompiledFilter, IndexHint};
pub use list::{Query, QueryParams};
pub use paging::Paging;
pub use patch::{MembershipChange, PatchOutcome, PatchRequest};
pub use schema::{ResourceKind, SchemaRegistry};
pub use sort::SortSpec;
