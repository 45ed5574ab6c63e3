//! The v2 directory calls: list the directories, and the users or user groups associated with an AD, Google
//! Workspace or M365 directory (listing them, binding or unbinding one).
//!
//! Must not know how requests are sent or lists paged, nor anything of group membership.

use super::edges::{EdgeOp, EdgeOutcome, edge_outcome};
use super::handle::JcClient;
use super::routes::{LIST_DIRECTORIES, assoc_routes};
use super::transport::{Call, path_id};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::{AssocTarget, GraphConnection, GraphOp, JcDirectory};

impl JcClient {
    // === reads: idempotent, retried per policy, lists checked against their totals ===

    /// Every directory (Active Directory, Google Workspace, Microsoft 365, LDAP, Workday, …).
    pub async fn list_directories(&self) -> Result<Vec<JcDirectory>, JcError> {
        self.v2_list(
            LIST_DIRECTORIES,
            &["api", "v2", "directories"],
            Vec::new(),
            |d: &JcDirectory| Some(d.id.as_str()),
        )
        .await
    }

    /// Ids of the users or user groups directly associated with an AD, Google Workspace or M365 directory.
    /// Other kinds have no such associations: `Protocol` error, without a call.
    pub async fn list_directory_associations(
        &self,
        dir: &JcDirectory,
        target: AssocTarget,
    ) -> Result<Vec<String>, JcError> {
        let routes = assoc_routes(dir)?;
        let dir_id = path_id(&dir.id)?;
        let items = self
            .v2_list(
                routes.list,
                &["api", "v2", routes.collection, dir_id, "associations"],
                vec![("targets", target.as_str().to_owned())],
                |c: &GraphConnection| Some(c.to.id.as_str()),
            )
            .await?;
        Ok(items
            .into_iter()
            // An edge without a type is taken to be what we asked for.
            .filter(|c| c.to.kind.is_empty() || c.to.kind.eq_ignore_ascii_case(target.as_str()))
            .map(|c| c.to.id)
            .collect())
    }

    // === writes: sent once; the caller decides what a failure means ===

    /// Bind a user or user group to (or unbind it from) an AD, Google Workspace or M365 directory (`204`).
    pub async fn directory_association(
        &self,
        dir: &JcDirectory,
        op: EdgeOp,
        target: AssocTarget,
        id: &str,
    ) -> Result<EdgeOutcome, JcError> {
        let routes = assoc_routes(dir)?;
        let dir_id = path_id(&dir.id)?;
        let body = GraphOp {
            op: op.as_str(),
            kind: target.as_str(),
            id,
        };
        let call = Call::new(
            routes.edit,
            vec!["api", "v2", routes.collection, dir_id, "associations"],
        )
        .json(&body)?;
        edge_outcome(op, self.send_once(&call).await)
    }
}

#[cfg(test)]
#[path = "directories_tests.rs"]
mod tests;
