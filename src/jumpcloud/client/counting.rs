//! Totals without listing: one page of one item, whose `totalCount` (v1) or `x-total-count` (v2) says how many
//! there are. For `check`.
//!
//! Must not know paging or any object's fields.

use super::handle::JcClient;
use super::routes::{LIST_DIRECTORIES, LIST_GROUPS, LIST_USERS, Route};
use super::transport::{Call, parse};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::V1Page;

impl JcClient {
    /// How many system users JumpCloud holds (`totalCount` of one page of one).
    pub async fn count_users(&self) -> Result<u64, JcError> {
        let call = Call::new(LIST_USERS, vec!["api", "systemusers"])
            .query("limit", "1".to_owned())
            .query("skip", "0".to_owned());
        let reply = self.send_read(&call).await?;
        let page: V1Page<serde_json::Value> = parse(LIST_USERS, &reply.body)?;
        Ok(page.total_count.unwrap_or(page.results.len() as u64))
    }

    /// How many user groups JumpCloud holds (`x-total-count` of one page of one).
    pub async fn count_groups(&self) -> Result<u64, JcError> {
        self.v2_count(LIST_GROUPS, &["api", "v2", "usergroups"])
            .await
    }

    /// How many directories JumpCloud lists (`x-total-count` of one page of one).
    pub async fn count_directories(&self) -> Result<u64, JcError> {
        self.v2_count(LIST_DIRECTORIES, &["api", "v2", "directories"])
            .await
    }

    async fn v2_count(&self, route: Route, segments: &[&str]) -> Result<u64, JcError> {
        let call = Call::new(route, segments.to_vec())
            .query("limit", "1".to_owned())
            .query("skip", "0".to_owned());
        let reply = self.send_read(&call).await?;
        let items: Vec<serde_json::Value> = parse(route, &reply.body)?;
        Ok(reply
            .headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(items.len() as u64))
    }
}
