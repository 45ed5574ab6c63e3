//! Group writes: `POST`, `PUT`, `PATCH` and `DELETE /Groups`, and memberships, whether asked for through a
//! Group or through a User's `groups`. A user group's members are its JumpCloud members; a directory listed
//! as a group (AD, Google Workspace, M365) is read-only but for its members, who are the directory's
//! holders: adding one binds the user to the directory, removing one unbinds it, unless the user holds it
//! only through a group. Membership changes send only the difference. The mapping of a Group body is
//! [`crate::mapping::group_write`]'s; how each call is sent, `upstream.rs`'s.

use crate::scim::view::{Key, View};
use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use serde_json::Value;

use super::{Writer, Written, ident, not_ready, partial};
use crate::cache::{Entry, GroupSource, Id, Index, Snapshot, Touched};
use crate::directory::WriteError;
use crate::jumpcloud::{EdgeOp, JcDirectory};
use crate::mapping;
use crate::mapping::group_write::{DesiredGroup, desired_group, group_write, member_ids};
use crate::scim::ResourceKind;
use crate::scim::error::{ScimError, excerpt};

/// The `displayName` a Group entry is served with.
fn served_name(entry: &Entry) -> &str {
    entry
        .view()
        .member(Key::of("displayName"))
        .and_then(View::as_str)
        .unwrap_or_default()
}

/// Member changes sent to JumpCloud at once for one group write (JumpCloud takes one call per member; the
/// client's own in-flight limit still applies across all writes).
const MEMBER_CHANGES_IN_FLIGHT: usize = 4;

impl Writer {
    fn check_group_name_free(
        snap: &Snapshot,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), WriteError> {
        if let Some(other) = snap
            .holders(Index::GroupName, name)
            .into_iter()
            .find(|id| Some(id.as_ref()) != except)
        {
            return Err(ScimError::uniqueness(format!(
                "displayName {name:?} is already the name of group {other}"
            ))
            .into());
        }
        Ok(())
    }

    fn check_members_exist(snap: &Snapshot, ids: &[String]) -> Result<(), WriteError> {
        for m in ids {
            if !snap.data.users.contains_key(m.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "members: {} is not a user of this directory",
                    excerpt(m)
                ))
                .into());
            }
        }
        Ok(())
    }

    /// `POST /Groups`.
    pub async fn create_group(&self, body: &Value) -> Result<Written, WriteError> {
        let DesiredGroup {
            name,
            external_id,
            description,
            members,
        } = desired_group(body, &self.settings.patch.refs)?;
        let _guard = self.lock(&format!("group:{name}")).await?;
        let snap = self.snapshot().await?;
        Self::check_group_name_free(&snap, &name, None)?;
        let members = members.unwrap_or_default();
        Self::check_members_exist(&snap, &members)?;
        let write = group_write(
            &name,
            description.as_deref(),
            external_id.as_deref(),
            None,
            &self.settings.mapping,
        );
        let group = self.send_group_create(&name, &write).await?;
        let gid = ident(&group.id);
        self.publish(|data| {
            data.groups.insert(gid.clone(), Arc::new(group.clone()));
            let mut t = Touched::default();
            t.groups.insert(gid.clone());
            t
        })
        .await?;
        for m in &members {
            if let Err(e) = self
                .change_group_membership(&gid, &ident(m), EdgeOp::Add)
                .await
            {
                return Err(partial(
                    e,
                    &format!(
                        "group {} was created, but not every member was added",
                        group.id
                    ),
                ));
            }
        }
        Self::written(self.snapshot().await?, ResourceKind::Group, &group.id)
    }

    /// Add or remove one user on a user group or a directory listed as a group, and publish it.
    pub(super) async fn change_group_membership(
        &self,
        gid: &Id,
        uid: &Id,
        op: EdgeOp,
    ) -> Result<(), WriteError> {
        let snap = self.snapshot().await?;
        let source = snap
            .get(ResourceKind::Group, gid)
            .and_then(|e| e.group_source);
        match source {
            Some(GroupSource::UserGroup) => {
                let already = snap.data.members.get(gid).is_some_and(|s| s.contains(uid));
                if (op == EdgeOp::Add) == already {
                    return Ok(());
                }
                self.send_membership(gid, op, uid).await?;
                let (g, u) = (gid.clone(), uid.clone());
                self.publish(move |data| {
                    match op {
                        EdgeOp::Add => data.add_member(&g, &u),
                        EdgeOp::Remove => data.remove_member(&g, &u),
                    }
                    let mut t = Touched::default();
                    t.member_lists.insert(g);
                    t.users.insert(u);
                    t
                })
                .await?;
                Ok(())
            }
            Some(GroupSource::Directory) => self.change_directory_holder(&snap, gid, uid, op).await,
            None => Err(ScimError::not_found(format!("Group {gid} not found")).into()),
        }
    }

    /// Member add/remove on a directory listed as a group is the directory association add/remove.
    async fn change_directory_holder(
        &self,
        snap: &Snapshot,
        did: &Id,
        uid: &Id,
        op: EdgeOp,
    ) -> Result<(), WriteError> {
        let dir: JcDirectory = snap
            .data
            .directories
            .get(did)
            .map(|d| (**d).clone())
            .ok_or_else(not_ready)?;
        let direct = snap
            .data
            .directory_users
            .get(did)
            .is_some_and(|s| s.contains(uid));
        match op {
            EdgeOp::Add if direct => return Ok(()),
            EdgeOp::Remove if !direct => {
                let via: Vec<String> = snap
                    .data
                    .directory_groups
                    .get(did)
                    .into_iter()
                    .flatten()
                    .filter(|g| snap.data.members.get(*g).is_some_and(|m| m.contains(uid)))
                    .filter_map(|g| {
                        snap.data
                            .groups
                            .get(g)
                            .map(|jg| format!("{} ({})", jg.name, g))
                    })
                    .collect();
                if via.is_empty() {
                    return Ok(());
                }
                return Err(ScimError::mutability(format!(
                    "user {uid} holds {} only through group(s) {}; remove the user from those groups instead",
                    mapping::directory_display(&dir),
                    via.join(", ")
                ))
                .into());
            }
            _ => {}
        }
        self.send_directory_holder(&dir, op, uid).await?;
        let (d, u) = (did.clone(), uid.clone());
        self.publish(move |data| {
            match op {
                EdgeOp::Add => {
                    data.directory_users
                        .entry(d.clone())
                        .or_default()
                        .insert(u.clone());
                }
                EdgeOp::Remove => {
                    if let Some(set) = data.directory_users.get_mut(&d) {
                        set.remove(&u);
                    }
                }
            }
            let mut t = Touched::default();
            t.directories.insert(d);
            t.users.insert(u);
            t
        })
        .await?;
        Ok(())
    }

    /// Apply a membership difference, then report the resource.
    async fn apply_membership(
        &self,
        gid: &Id,
        added: &[String],
        removed: &[String],
    ) -> Result<(), WriteError> {
        let snap = self.snapshot().await?;
        Self::check_members_exist(&snap, added)?;
        let total = added.len() + removed.len();
        let changes = added
            .iter()
            .map(|m| (m, EdgeOp::Add))
            .chain(removed.iter().map(|m| (m, EdgeOp::Remove)));
        let is_user_group = snap
            .get(ResourceKind::Group, gid)
            .and_then(|e| e.group_source)
            == Some(GroupSource::UserGroup);
        if !is_user_group {
            // A directory listed as a group: each member is a directory association of its own.
            for (done, (m, op)) in changes.enumerate() {
                self.change_group_membership(gid, &ident(m), op)
                    .await
                    .map_err(|e| {
                        partial(e, &format!("{done} of {total} member changes were applied"))
                    })?;
            }
            return Ok(());
        }
        // JumpCloud takes one call per member. They go a few at a time, and what landed is published once
        // for the batch: a group of 100,000 members is derived again once, not once per member.
        let current = snap.data.members.get(gid);
        let needed: Vec<(Id, EdgeOp)> = changes
            .map(|(m, op)| (ident(m), op))
            .filter(|(uid, op)| (*op == EdgeOp::Add) != current.is_some_and(|s| s.contains(uid)))
            .collect();
        let sent: Vec<(Id, EdgeOp, Result<(), WriteError>)> = stream::iter(needed)
            .map(|(uid, op)| async move {
                let r = self.send_membership(gid, op, &uid).await;
                (uid, op, r)
            })
            .buffer_unordered(MEMBER_CHANGES_IN_FLIGHT)
            .collect()
            .await;
        let mut landed = Vec::new();
        let (mut failed, mut failures) = (None, 0usize);
        for (uid, op, r) in sent {
            match r {
                Ok(()) => landed.push((uid, op)),
                Err(e) => {
                    failures += 1;
                    failed = failed.or(Some(e));
                }
            }
        }
        // Changes that were already so count as applied: the group is as asked for them.
        let count = total - failures;
        if !landed.is_empty() {
            let g = gid.clone();
            self.publish(move |data| {
                let mut t = Touched::default();
                for (u, op) in landed {
                    match op {
                        EdgeOp::Add => data.add_member(&g, &u),
                        EdgeOp::Remove => data.remove_member(&g, &u),
                    }
                    t.users.insert(u);
                }
                t.member_lists.insert(g);
                t
            })
            .await?;
        }
        match failed {
            Some(e) => Err(partial(
                e,
                &format!("{count} of {total} member changes were applied"),
            )),
            None => Ok(()),
        }
    }

    /// A write's name, externalId and description: sent for a user group when they changed; for a
    /// directory listed as a group, which cannot change them, the write is refused when it would
    /// (`refused` names what it would change).
    async fn write_fields(
        &self,
        snap: &Snapshot,
        entry: &Entry,
        gid: &Id,
        (name, external_id, description): (&str, Option<&str>, Option<&str>),
        refused: Option<&str>,
    ) -> Result<(), WriteError> {
        if entry.group_source == Some(GroupSource::Directory) {
            return match refused {
                Some(what) => Self::refuse_directory_change(entry, what),
                None => Ok(()),
            };
        }
        self.update_group_fields(snap, gid, name, external_id, description)
            .await
    }

    /// Rename / re-describe a user group when the resource says so.
    async fn update_group_fields(
        &self,
        snap: &Snapshot,
        gid: &Id,
        name: &str,
        external_id: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), WriteError> {
        let current = snap.data.groups.get(gid).cloned().ok_or_else(not_ready)?;
        let cur_ext = mapping::group_external_id(&current, &self.settings.mapping);
        let cur_desc = current.description.as_deref().filter(|s| !s.is_empty());
        if current.name == name && cur_ext == external_id && cur_desc == description {
            return Ok(());
        }
        if !current.name.eq_ignore_ascii_case(name) {
            Self::check_group_name_free(snap, name, Some(gid))?;
        }
        let write = group_write(
            name,
            description,
            external_id,
            Some(&current),
            &self.settings.mapping,
        );
        let updated = self.send_group_update(gid, name, &write).await?;
        let g = gid.clone();
        self.publish(move |data| {
            data.groups.insert(g.clone(), Arc::new(updated));
            let mut t = Touched::default();
            t.groups.insert(g);
            t
        })
        .await?;
        Ok(())
    }

    fn refuse_directory_change(entry: &Entry, what: &str) -> Result<(), WriteError> {
        if entry.group_source == Some(GroupSource::Directory) {
            return Err(ScimError::mutability(format!(
                "group {} is a JumpCloud directory listed as a group; {what} it is not possible here. Only its members \
                 (who holds the directory) can change; rename or remove the directory in JumpCloud itself",
                entry.id
            ))
            .into());
        }
        Ok(())
    }

    /// `PUT /Groups/{id}`: name, description, externalId and the full membership (only the difference is sent).
    pub async fn replace_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, entry) = self.begin(ResourceKind::Group, id, if_match).await?;
        let DesiredGroup {
            name,
            external_id,
            description,
            members,
        } = desired_group(body, &self.settings.patch.refs)?;
        let gid = ident(id);
        let refused = (served_name(&entry) != name).then_some("renaming");
        let fields = (
            name.as_str(),
            external_id.as_deref(),
            description.as_deref(),
        );
        self.write_fields(&snap, &entry, &gid, fields, refused)
            .await?;
        let want: BTreeSet<String> = members.unwrap_or_default().into_iter().collect();
        let have: BTreeSet<String> = member_ids(entry.view());
        let added: Vec<String> = want.difference(&have).cloned().collect();
        let removed: Vec<String> = have.difference(&want).cloned().collect();
        self.apply_membership(&gid, &added, &removed).await?;
        Self::written(self.snapshot().await?, ResourceKind::Group, id)
    }

    /// `PATCH /Groups/{id}`.
    pub async fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, entry) = self.begin(ResourceKind::Group, id, if_match).await?;
        let outcome = self
            .apply_off_runtime(&entry, body, ResourceKind::Group)
            .await?;
        let gid = ident(id);
        // The membership is the outcome's own (`membership`); the resource's members (all 100,000 of a
        // large group) are not read again.
        let mut resource = outcome.resource;
        if let Some(obj) = resource.as_object_mut() {
            obj.remove("members");
        }
        let DesiredGroup {
            name,
            external_id,
            description,
            ..
        } = desired_group(&resource, &self.settings.patch.refs)?;
        let refused = (served_name(&entry) != name || resource.get("externalId").is_some())
            .then_some("changing its name or externalId");
        let fields = (
            name.as_str(),
            external_id.as_deref(),
            description.as_deref(),
        );
        self.write_fields(&snap, &entry, &gid, fields, refused)
            .await?;
        self.apply_membership(&gid, &outcome.membership.added, &outcome.membership.removed)
            .await?;
        Self::written(self.snapshot().await?, ResourceKind::Group, id)
    }

    /// `DELETE /Groups/{id}`.
    pub async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<(), WriteError> {
        let (_guard, _, entry) = self.begin(ResourceKind::Group, id, if_match).await?;
        Self::refuse_directory_change(&entry, "deleting")?;
        self.send_group_delete(id).await?;
        let gid = ident(id);
        self.publish(|data| data.remove_group(&gid)).await?;
        self.store.note_deletion(ResourceKind::Group);
        Ok(())
    }
}
