//! The v1 system users calls: list, get, find by field, create, update, delete.
//!
//! Must not know how requests are sent or lists paged, nor anything of groups or directories.

use super::handle::JcClient;
use super::routes::{CREATE_USER, DELETE_USER, GET_USER, LIST_USERS, UPDATE_USER};
use super::transport::{Call, found, parse_object, path_id};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::{JcUser, JcUserWrite};

impl JcClient {
    // === reads: idempotent, retried per policy, lists checked against their totals ===

    /// Every system user, in `_id` order.
    pub async fn list_users(&self) -> Result<Vec<JcUser>, JcError> {
        self.v1_list(
            LIST_USERS,
            &["api", "systemusers"],
            Vec::new(),
            true,
            |u: &JcUser| Some(u.id.as_str()),
        )
        .await
    }

    /// One user; `None` when JumpCloud answers 404.
    pub async fn get_user(&self, id: &str) -> Result<Option<JcUser>, JcError> {
        let Ok(id) = path_id(id) else {
            return Ok(None);
        };
        found(
            self.get_one(Call::new(GET_USER, vec!["api", "systemusers", id]))
                .await,
        )
    }

    /// Users whose `field` equals `value` exactly (v1 `filter=field:$eq:value`; case-sensitive upstream).
    pub async fn find_users(&self, field: &str, value: &str) -> Result<Vec<JcUser>, JcError> {
        if field.is_empty() || field.contains(':') {
            return Err(JcError::Rejected {
                status: 400,
                message: format!("cannot filter on field {field:?}"),
                field_violations: Vec::new(),
            });
        }
        self.v1_list(
            LIST_USERS,
            &["api", "systemusers"],
            vec![("filter", format!("{field}:$eq:{value}"))],
            true,
            |u: &JcUser| Some(u.id.as_str()),
        )
        .await
    }

    // === writes: sent once; the caller decides what a failure means ===

    /// Create a user (`200` on JumpCloud). A duplicate username/email/employeeIdentifier is a 400 `Rejected`.
    /// A `Transient` error with `sent: true` may mean the user exists now: look it up before trying again.
    pub async fn create_user(&self, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let call = Call::new(CREATE_USER, vec!["api", "systemusers"])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(CREATE_USER, &reply.body)
    }

    /// Merge `body` into a user: named fields change, arrays in it replace JumpCloud's, the rest stays.
    pub async fn update_user(&self, id: &str, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let id = path_id(id)?;
        let call = Call::new(UPDATE_USER, vec!["api", "systemusers", id])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(UPDATE_USER, &reply.body)
    }

    /// Delete a user. Without `cascade_manager`, deleting someone's manager is a 409 `Conflict`; with it,
    /// JumpCloud first clears `manager` on the direct reports. The returned body (the deleted user) is ignored.
    pub async fn delete_user(&self, id: &str, cascade_manager: bool) -> Result<(), JcError> {
        let id = path_id(id)?;
        let mut call = Call::new(DELETE_USER, vec!["api", "systemusers", id]);
        if cascade_manager {
            call = call.query("cascade_manager", "null");
        }
        self.send_once(&call).await.map(drop)
    }
}

#[cfg(test)]
#[path = "system_users_tests.rs"]
mod tests;
