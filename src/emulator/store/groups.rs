//! User groups (facts sheet §3.2, §3.3): reads, create, full replace, delete, and direct membership, with
//! the case-insensitive name index and the events each write records.
//!
//! Reading a group body is `model`'s; directory bindings of a group live in `directories`.

use std::collections::BTreeSet;

use super::{EdgeOp, Store, group_not_found, user_not_found};
use crate::emulator::error::ApiError;
use crate::emulator::events::{Origin, Subject, diff, kind};
use crate::emulator::model::{Group, GroupFields};

// === impl Store ===

impl Store {
    // --- groups ---

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// `POST /api/v2/usergroups`.
    pub fn create_group(
        &mut self,
        fields: GroupFields,
        origin: Origin,
    ) -> Result<&Group, ApiError> {
        let key = fields.name.to_lowercase();
        if self.group_by_name.contains_key(&key) {
            return Err(ApiError::AlreadyExists);
        }
        let id = self.ids.next(origin.at.as_second());
        self.group_by_name.insert(key, id.clone());
        let group = Group {
            id: id.clone(),
            organization: self.org.id.clone(),
            fields,
            members: BTreeSet::new(),
        };
        self.events.record(
            origin,
            kind::GROUP_CREATE,
            Self::group_subject(&group),
            None,
        );
        Ok(self.groups.entry(id).or_insert(group))
    }

    /// `PUT /api/v2/usergroups/{id}`: replaces every writable field; members stay.
    pub fn replace_group(
        &mut self,
        id: &str,
        fields: GroupFields,
        origin: Origin,
    ) -> Result<&Group, ApiError> {
        let old_key = match self.groups.get(id) {
            Some(g) => g.fields.name.to_lowercase(),
            None => return Err(group_not_found(id)),
        };
        let key = fields.name.to_lowercase();
        if self
            .group_by_name
            .get(&key)
            .is_some_and(|owner| owner != id)
        {
            return Err(ApiError::AlreadyExists);
        }
        self.group_by_name.remove(&old_key);
        self.group_by_name.insert(key, id.to_owned());
        let group = self.groups.get_mut(id).ok_or_else(|| group_not_found(id))?;
        let old = group.to_json();
        group.fields = fields;
        let changes = diff(&old, &group.to_json(), &["id"]);
        self.events.record(
            origin,
            kind::GROUP_UPDATE,
            Self::group_subject(group),
            Some(changes),
        );
        Ok(group)
    }

    /// `DELETE /api/v2/usergroups/{id}`: the group's memberships and associations go with it.
    pub fn delete_group(&mut self, id: &str, origin: Origin) -> Result<Group, ApiError> {
        let group = self.groups.remove(id).ok_or_else(|| group_not_found(id))?;
        self.group_by_name.remove(&group.fields.name.to_lowercase());
        for d in &mut self.directories {
            d.groups.remove(id);
        }
        if self.all_users.as_deref() == Some(id) {
            self.all_users = None;
        }
        self.events.record(
            origin,
            kind::GROUP_DELETE,
            Self::group_subject(&group),
            None,
        );
        Ok(group)
    }

    /// `POST /api/v2/usergroups/{id}/members`. Adding a member twice is 409 Already Exists; removing a
    /// non-member is 404.
    pub fn change_member(
        &mut self,
        group_id: &str,
        op: EdgeOp,
        user_id: &str,
        origin: Origin,
    ) -> Result<(), ApiError> {
        if !self.groups.contains_key(group_id) {
            return Err(group_not_found(group_id));
        }
        let user = self
            .users
            .get(user_id)
            .ok_or_else(|| user_not_found(user_id))?;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| group_not_found(group_id))?;
        match op {
            EdgeOp::Add if !group.members.insert(user_id.to_owned()) => {
                return Err(ApiError::AlreadyExists);
            }
            EdgeOp::Remove if !group.members.remove(user_id) => {
                return Err(ApiError::NotFound(format!(
                    "user {user_id} is not a member of group {group_id}"
                )));
            }
            _ => {}
        }
        let edge = Subject::Edge {
            op: op.as_str(),
            from: Self::group_end(group),
            to: Self::user_end(user),
        };
        self.events
            .record(origin, kind::ASSOCIATION_CHANGE, edge, None);
        Ok(())
    }

    /// Groups `user_id` is a direct member of, in id order.
    pub fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups
            .values()
            .filter(move |g| g.members.contains(user_id))
    }
}
