//! The only module that knows JumpCloud's wire format.
//!
//! Everything above this module speaks in these types and [`JcError`](crate::jumpcloud::JcError) variants;
//! nothing here knows SCIM, the snapshot, or HTTP-server concerns.
//!
//! # Layout
//!
//! - [`model`](crate::jumpcloud::model): the DTOs, read leniently and written exactly.
//! - [`event`](crate::jumpcloud::event): Directory Insights events, read so that no odd event fails a page.
//! - [`client`](crate::jumpcloud::client): [`JcClient`](crate::jumpcloud::JcClient), a folder with one file per
//!   concern: the handle (config, construction, key rotation, counters), the route table, one request and its
//!   answer (transport), paging, counting, v1 system users, v1 organizations, v2 user groups and membership,
//!   v2 directories and their associations, graph edge outcomes.
//! - [`error`](crate::jumpcloud::error): the classified error and how statuses and bodies become it.
//! - [`retry`](crate::jumpcloud::retry): retry policy, jittered backoff, the Retry-After clamp.
//! - [`resilience`](crate::jumpcloud::resilience): the guards around every call: retry budget, circuit
//!   breaker, in-flight bound, deadline.

pub mod client;
pub mod error;
pub mod event;
pub mod model;
pub mod resilience;
pub mod retry;

pub use client::{
    ClientStats, EVENTS_PAGE, EdgeOp, EdgeOutcome, EventBatch, FeedError, JcClient, JcClientConfig,
    Purpose, RequestObserver, insights_url_for,
};
pub use error::{JcError, StatusClass, classify_status, parse_retry_after};
pub use event::{JcAssociation, JcConnection, JcEvent, JcEventEnd, JcEventResource};
pub use model::{
    AssocTarget, JcAddress, JcAttribute, JcDirectory, JcDirectoryKind, JcGroup, JcGroupWrite,
    JcMfa, JcPhoneNumber, JcRestrictedField, JcUser, JcUserWrite, state,
};
pub use resilience::{
    Breaker, BreakerCall, BreakerConfig, BreakerState, BudgetConfig, DEFAULT_MAX_IN_FLIGHT,
    InvalidBreaker, InvalidBudget, InvalidGuard, RetryBudget, UpstreamGuard, is_upstream_failure,
    with_deadline,
};
pub use retry::{Backoff, InvalidBackoff, RetryEvent, RetryPolicy, clamp_retry_after};
