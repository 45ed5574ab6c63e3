//! The v1 organizations list: which organizations the key can see. The one route sent without `x-org-id`.
//!
//! Must not know how requests are sent or lists paged.

use super::handle::JcClient;
use super::routes::LIST_ORGS;
use crate::jumpcloud::error::JcError;

impl JcClient {
    /// The organizations the key can see (v1 envelope). Sent without `x-org-id`, which this route refuses.
    pub async fn list_organizations(&self) -> Result<Vec<serde_json::Value>, JcError> {
        self.v1_list(
            LIST_ORGS,
            &["api", "organizations"],
            Vec::new(),
            false,
            |o: &serde_json::Value| {
                o.get("_id")
                    .or_else(|| o.get("id"))
                    .and_then(|v| v.as_str())
            },
        )
        .await
    }
}

#[cfg(test)]
#[path = "organizations_tests.rs"]
mod tests;
