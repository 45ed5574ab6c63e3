//! `JcClient`: the reqwest client for JumpCloud's v1 and v2 APIs.
//!
//! Owns URLs (the console's, and the Directory Insights host's), headers (`x-api-key`, `x-org-id`), paging (v1 `{totalCount, results}`, v2 bare arrays with
//! `x-total-count`), the check of every list against its announced total, retries of reads, call/retry
//! counters and the per-call trace and observer hook. Every call passes the
//! [`UpstreamGuard`](super::resilience::UpstreamGuard): the circuit breaker (fail fast while open), the bound on
//! calls in flight, and for read retries the retry budget. Writes are sent exactly once: whether a failed write
//! may be repeated depends on what it was, which only the caller knows.
//!
//! Must not know SCIM or the snapshot; it speaks only in [`model`](super::model) types.
//!
//! # Layout
//!
//! One [`JcClient`] type; each file below adds the `impl JcClient` block for its concern.
//!
//! - `handle.rs`: [`JcClientConfig`], construction and its validation, api-key rotation, [`ClientStats`], the
//!   observer hook, the state clones share.
//! - `routes.rs`: every route called, and each directory kind's association collection.
//! - `transport.rs`: one request built, sent through the guard (once, or retried for reads), traced, its
//!   failure classified and its body read.
//! - `pagination.rs`: whole v1 and v2 lists, checked page by page against the announced total.
//! - `counting.rs`: totals from one page of one, for `check`.
//! - `system_users.rs`: the v1 system user calls.
//! - `organizations.rs`: the v1 organizations list.
//! - `user_groups.rs`: the v2 user group calls and group membership.
//! - `directories.rs`: the v2 directory list and directory associations.
//! - `edges.rs`: [`EdgeOp`] and [`EdgeOutcome`] for graph writes.
//! - `insights.rs`: the Directory Insights feed's events, paged by `X-Search_after`, on its own host and guard.
//!
//! Tests sit beside each file as `<name>_tests.rs`; the stand-in upstream they share is `test_support.rs`.

mod counting;
mod directories;
mod edges;
mod handle;
mod insights;
mod organizations;
mod pagination;
mod routes;
mod system_users;
mod transport;
mod user_groups;

#[cfg(test)]
mod test_support;

pub use edges::{EdgeOp, EdgeOutcome};
pub use handle::{
    ClientStats, JcClient, JcClientConfig, Purpose, RequestObserver, insights_url_for,
};
pub use insights::{EVENTS_PAGE, EventBatch, FeedError};
