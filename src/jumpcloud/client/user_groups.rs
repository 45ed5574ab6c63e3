//! The v2 user group calls: list, get, create, replace, delete, and the group's direct members (listing them,
//! adding or removing one).
//!
//! Must not know how requests are sent or lists paged, nor anything of directories.

use super::edges::{EdgeOp, EdgeOutcome, edge_outcome};
use super::handle::JcClient;
use super::routes::{
    CREATE_GROUP, DELETE_GROUP, EDIT_MEMBERS, GET_GROUP, LIST_GROUPS, LIST_MEMBERS, PUT_GROUP,
};
use super::transport::{Call, found, parse_object, path_id};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::{GraphConnection, GraphOp, JcGroup, JcGroupWrite};

impl JcClient {
    // === reads: idempotent, retried per policy, lists checked against their totals ===

    /// Every user group, in `id` order.
    pub async fn list_groups(&self) -> Result<Vec<JcGroup>, JcError> {
        self.v2_list(
            LIST_GROUPS,
            &["api", "v2", "usergroups"],
            vec![("sort", "id".to_owned())],
            |g: &JcGroup| Some(g.id.as_str()),
        )
        .await
    }

    /// One user group; `None` when JumpCloud answers 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<JcGroup>, JcError> {
        let Ok(id) = path_id(id) else {
            return Ok(None);
        };
        found(
            self.get_one(Call::new(GET_GROUP, vec!["api", "v2", "usergroups", id]))
                .await,
        )
    }

    /// Ids of the users directly in a group. An unknown group is `NotFound`.
    pub async fn list_group_members(&self, group_id: &str) -> Result<Vec<String>, JcError> {
        let group_id = path_id(group_id)?;
        let items = self
            .v2_list(
                LIST_MEMBERS,
                &["api", "v2", "usergroups", group_id, "members"],
                Vec::new(),
                |c: &GraphConnection| Some(c.to.id.as_str()),
            )
            .await?;
        Ok(items
            .into_iter()
            .filter(|c| c.to.kind.eq_ignore_ascii_case("user"))
            .map(|c| c.to.id)
            .collect())
    }

    // === writes: sent once; the caller decides what a failure means ===

    /// Create a user group (`201`). A name taken (case-insensitively) comes back as `Conflict` or `Rejected`.
    pub async fn create_group(&self, body: &JcGroupWrite) -> Result<JcGroup, JcError> {
        let call = Call::new(CREATE_GROUP, vec!["api", "v2", "usergroups"]).json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(CREATE_GROUP, &reply.body)
    }

    /// Replace a user group: whatever `body` leaves `None` is cleared upstream.
    pub async fn put_group(&self, id: &str, body: &JcGroupWrite) -> Result<JcGroup, JcError> {
        let id = path_id(id)?;
        let call = Call::new(PUT_GROUP, vec!["api", "v2", "usergroups", id]).json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(PUT_GROUP, &reply.body)
    }

    /// Delete a user group (JumpCloud answers 200 with the group, or 204).
    pub async fn delete_group(&self, id: &str) -> Result<(), JcError> {
        let id = path_id(id)?;
        self.send_once(&Call::new(
            DELETE_GROUP,
            vec!["api", "v2", "usergroups", id],
        ))
        .await
        .map(drop)
    }

    /// Add a user to, or remove one from, a group (`204`). Adding a member again is `AlreadyInState`.
    pub async fn group_member(
        &self,
        group_id: &str,
        op: EdgeOp,
        user_id: &str,
    ) -> Result<EdgeOutcome, JcError> {
        let group_id = path_id(group_id)?;
        let body = GraphOp {
            op: op.as_str(),
            kind: "user",
            id: user_id,
        };
        let call = Call::new(
            EDIT_MEMBERS,
            vec!["api", "v2", "usergroups", group_id, "members"],
        )
        .json(&body)?;
        edge_outcome(op, self.send_once(&call).await)
    }
}

#[cfg(test)]
#[path = "user_groups_tests.rs"]
mod tests;
