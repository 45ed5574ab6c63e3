//! The only module that knows JumpCloud's wire format: DTOs ([`model`](crate::jumpcloud::model)), the HTTP
//! client with paging ([`client`](crate::jumpcloud::client)), the classified error
//! ([`error`](crate::jumpcloud::error)), the retry pieces ([`retry`](crate::jumpcloud::retry)) and the guards
//! around every call: retry budget, circuit breaker, in-flight bound, deadline
//! ([`resilience`](crate::jumpcloud::resilience)).
//!
//! Everything above this module speaks in these types and [`JcError`](crate::jumpcloud::JcError) variants;
//! nothing here knows SCIM, the snapshot, or HTTP-server concerns.

pub mod client;
pub mod error;
pub mod model;
pub mod resilience;
pub mod retry;

pub use client::{ClientStats, EdgeOp, EdgeOutcome, JcClient, JcClientConfig, RequestObserver};
pub use error::{JcError, StatusClass, classify_status, parse_retry_after};
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
