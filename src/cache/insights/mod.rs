//! Incremental refresh from JumpCloud's Directory Insights feed.
//!
//! Owns reading the feed on a schedule and turning what it reports into snapshot versions: where the
//! published data stands in the feed ([`cursor`]), which objects a batch of events changed and how
//! ([`plan`]), fetching just those and editing the data ([`apply`]), and the loop with its verdict on the
//! feed's health ([`poller`]), which the full refresh's schedule and the operators' pages read. Publishes only
//! through [`Store::publish_events`](crate::cache::Store::publish_events); reads JumpCloud only through
//! [`JcClient`](crate::jumpcloud::JcClient). Must not know HTTP, SCIM, or the feed's wire format beyond the
//! client's event DTOs.

use serde::{Deserialize, Serialize};

/// Whether the feed is read (`insights.enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// Read it when the organisation has it (a 403 says it does not; asked again now and then).
    #[default]
    Auto,
    /// Read it whatever it answered before; a plan without it is reported on every poll.
    On,
    /// Never read it: full refreshes only.
    Off,
}

impl FeedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedMode::Auto => "auto",
            FeedMode::On => "on",
            FeedMode::Off => "off",
        }
    }
}

pub mod apply;
pub mod cursor;
pub mod health;
pub mod plan;
pub mod poller;

pub use cursor::Cursor;
pub use health::{FeedHealth, FeedReport, FeedState};
pub use plan::Plan;
pub use poller::{FeedSettings, Poller};
