//! Directories (facts sheet §3.5): reads, and the graph writes that bind users and groups to a directory,
//! with the `association_change` each records.
//!
//! Knows only a directory's direct edges: it never follows a bound group to its members.

use super::{EdgeOp, Store, Target, Via, group_not_found, user_not_found};
use crate::emulator::error::ApiError;
use crate::emulator::events::{End, Origin, Subject, kind};
use crate::emulator::model::{DirKind, Directory};

// === impl Store ===

impl Store {
    // --- directories ---

    pub fn directories(&self) -> &[Directory] {
        &self.directories
    }

    /// The directory `id` of `kind`.
    pub fn directory(&self, kind: DirKind, id: &str) -> Option<&Directory> {
        self.directories
            .iter()
            .find(|d| d.kind == kind && d.id == id)
    }

    /// A graph write between a directory and a user or group. Existing edge on add → 409 Already Exists;
    /// missing edge on remove → 404; unknown directory, user or group → 404. Its `association_change` runs
    /// from the end the write went `via` to the other.
    #[allow(clippy::too_many_arguments)]
    pub fn change_association(
        &mut self,
        kind: DirKind,
        dir_id: &str,
        op: EdgeOp,
        target: Target,
        target_id: &str,
        via: Via,
        origin: Origin,
    ) -> Result<(), ApiError> {
        let member = match target {
            Target::User => self.users.get(target_id).map(Self::user_end),
            Target::UserGroup => self.groups.get(target_id).map(Self::group_end),
        };
        let exists = member.is_some();
        let dir = self
            .directories
            .iter_mut()
            .find(|d| d.kind == kind && d.id == dir_id)
            .ok_or_else(|| {
                ApiError::NotFound(format!("{} {dir_id} not found", kind.type_name()))
            })?;
        if !exists {
            return Err(match target {
                Target::User => user_not_found(target_id),
                Target::UserGroup => group_not_found(target_id),
            });
        }
        let set = match target {
            Target::User => &mut dir.users,
            Target::UserGroup => &mut dir.groups,
        };
        match op {
            EdgeOp::Add if !set.insert(target_id.to_owned()) => {
                return Err(ApiError::AlreadyExists);
            }
            EdgeOp::Remove if !set.remove(target_id) => {
                return Err(ApiError::NotFound(format!(
                    "no association between {} {dir_id} and {target_id}",
                    kind.type_name()
                )));
            }
            _ => {}
        }
        let directory = End {
            kind: kind.type_name(),
            id: dir.id.clone(),
            name: dir.name.clone(),
        };
        if let Some(member) = member {
            let (from, to) = match via {
                Via::Directory => (directory, member),
                Via::Member => (member, directory),
            };
            let edge = Subject::Edge {
                op: op.as_str(),
                from,
                to,
            };
            self.events
                .record(origin, kind::ASSOCIATION_CHANGE, edge, None);
        }
        Ok(())
    }
}
