//! User writes: `POST`, `PUT`, `PATCH` and `DELETE /Users`, with the checks made against the snapshot before
//! anything goes upstream: uniqueness of userName, email, employeeNumber and the JumpCloud username derived
//! from userName, the manager, the required email and the bounds on multi-valued attributes. What is sent
//! comes from [`crate::mapping::write`]; how it is sent, from `upstream.rs`.

use serde_json::Value;

use super::{DeleteMode, Writer, Written, ident, not_ready, touched_user};
use crate::cache::{Id, Index, PackedUser, Snapshot};
use crate::directory::WriteError;
use crate::jumpcloud::{EdgeOp, JcUserWrite};
use crate::mapping;
use crate::mapping::username::derive_username;
use crate::mapping::write::{DesiredUser, desired_user, is_noop, user_write};
use crate::scim::ResourceKind;
use crate::scim::error::{ScimError, excerpt};
use crate::scim::filter::fold_case;
use crate::scim::patch::MembershipChange;

impl Writer {
    /// Uniqueness of userName, email and employeeNumber among users other than `except`.
    fn check_user_unique(
        snap: &Snapshot,
        d: &DesiredUser,
        except: Option<&str>,
    ) -> Result<(), WriteError> {
        let idx = &snap.indexes;
        let others = |index: Index, value: &str| -> Option<Id> {
            snap.holders(index, value)
                .into_iter()
                .find(|id| Some(id.as_ref()) != except)
        };
        if let Some(other) = others(Index::UserName, &d.user_name) {
            return Err(ScimError::uniqueness(format!(
                "userName {:?} is already taken by user {other}",
                d.user_name
            ))
            .into());
        }
        if let Some(email) = &d.email {
            let folded = fold_case(email);
            let holder = idx
                .find(Index::Email, email)
                .into_iter()
                .flatten()
                .find(|id| {
                    Some(id.as_ref()) != except
                        && snap
                            .data
                            .users
                            .get(*id)
                            .is_some_and(|u| fold_case(&u.unpack().email) == folded)
                });
            if let Some(other) = holder {
                return Err(ScimError::uniqueness(format!(
                    "email {email:?} is already the email of user {other}"
                ))
                .into());
            }
        }
        if let Some(n) = &d.employee_identifier
            && let Some(other) = others(Index::EmployeeNumber, n)
        {
            return Err(ScimError::uniqueness(format!(
                "employeeNumber {n:?} is already held by user {other}"
            ))
            .into());
        }
        Ok(())
    }

    /// The JumpCloud username for `d`, refused when another user already holds it.
    fn username_for(
        &self,
        snap: &Snapshot,
        d: &DesiredUser,
        except: Option<&str>,
    ) -> Result<String, WriteError> {
        let username = derive_username(&d.user_name, self.settings.username_policy)?;
        if let Some(holder) = snap
            .data
            .users
            .values()
            .find(|u| u.username().eq_ignore_ascii_case(&username) && Some(u.id()) != except)
        {
            return Err(ScimError::uniqueness(format!(
                "the JumpCloud username {username:?} derived from userName {:?} is already held by user {} ({:?})",
                d.user_name,
                holder.id(),
                mapping::served_user_name(&holder.unpack(), &self.settings.mapping)
            ))
            .into());
        }
        Ok(username)
    }

    fn require_email(d: &DesiredUser) -> Result<(), WriteError> {
        if d.email.is_none() {
            return Err(ScimError::invalid_value(
                "emails is required: JumpCloud needs an email address; send emails [{\"value\": …, \"type\": \"work\", \"primary\": true}]",
            )
            .into());
        }
        Ok(())
    }

    /// The manager must be a user of this directory (and not the user itself), checked before anything
    /// goes upstream.
    fn check_manager(snap: &Snapshot, d: &DesiredUser, id: Option<&str>) -> Result<(), WriteError> {
        let Some(m) = &d.manager else { return Ok(()) };
        if Some(m.as_str()) == id {
            return Err(ScimError::invalid_value(format!(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager: a user cannot be its own \
                 manager ({})",
                excerpt(m)
            ))
            .into());
        }
        if !snap.data.users.contains_key(m.as_str()) {
            return Err(ScimError::invalid_value(format!(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager: {} is not a user of this \
                 directory",
                excerpt(m)
            ))
            .into());
        }
        Ok(())
    }

    /// Multi-valued attributes hold at most `limits.multi_values` values.
    fn check_capacity(&self, d: &DesiredUser) -> Result<(), WriteError> {
        let max = self.settings.patch.max_multi;
        for (name, n) in [
            ("phoneNumbers", d.phone_numbers.len()),
            ("addresses", d.addresses.len()),
        ] {
            if n > max {
                return Err(ScimError::invalid_value(format!(
                    "{name} holds {n} values; this service keeps at most {max} (limits.multi_values)"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// The groups a PATCH of `groups` names must be groups of this directory.
    fn check_groups_exist(
        snap: &Snapshot,
        membership: &MembershipChange,
    ) -> Result<(), WriteError> {
        for g in membership.added.iter().chain(&membership.removed) {
            if !snap.groups.contains_key(g.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "groups: {} is not a group of this directory",
                    excerpt(g)
                ))
                .into());
            }
        }
        Ok(())
    }

    /// `POST /Users`.
    pub async fn create_user(&self, body: &Value) -> Result<Written, WriteError> {
        let d = desired_user(body, &self.settings.mapping)
            .map_err(|e| ScimError::invalid_value(e.0))?;
        Self::require_email(&d)?;
        self.check_capacity(&d)?;
        let _guard = self.lock(&d.user_name).await?;
        let snap = self.snapshot().await?;
        Self::check_user_unique(&snap, &d, None)?;
        Self::check_manager(&snap, &d, None)?;
        let username = self.username_for(&snap, &d, None)?;
        let write = user_write(&d, None, Some(&username), &self.settings.mapping);
        let created = self.send_user_create(&d, &username, &write).await?;
        let snap = self
            .publish(|data| {
                let uid = data.put_user(created.clone());
                touched_user(&uid)
            })
            .await?;
        Self::written(snap, ResourceKind::User, &created.id)
    }

    /// Make the user with `id` say what `resource` says; `membership` carries `groups` changes of a PATCH.
    async fn update_user_to(
        &self,
        snap: &Snapshot,
        id: &str,
        resource: &Value,
        membership: &MembershipChange,
    ) -> Result<Written, WriteError> {
        let current = snap
            .data
            .users
            .get(id)
            .map(PackedUser::unpack)
            .ok_or_else(|| {
                WriteError::from(ScimError::not_found(format!("User {id} not found")))
            })?;
        let d = desired_user(resource, &self.settings.mapping)
            .map_err(|e| ScimError::invalid_value(e.0))?;
        Self::require_email(&d)?;
        self.check_capacity(&d)?;
        Self::check_user_unique(snap, &d, Some(id))?;
        Self::check_manager(snap, &d, Some(id))?;
        let served = mapping::served_user_name(&current, &self.settings.mapping);
        let username = if served != d.user_name {
            Some(self.username_for(snap, &d, Some(id))?)
        } else {
            None
        };
        Self::check_groups_exist(snap, membership)?;
        let write = user_write(
            &d,
            Some(&current),
            username.as_deref(),
            &self.settings.mapping,
        );
        let uid = ident(id);
        if !is_noop(&write) {
            let updated = self.send_user_update("the update", id, &write).await?;
            self.publish(|data| {
                let uid = data.put_user(updated);
                touched_user(&uid)
            })
            .await?;
        }
        if !membership.is_empty() {
            // SailPoint's updateGroupsViaUsers: group changes through the User resource.
            for g in &membership.added {
                self.change_group_membership(&ident(g), &uid, EdgeOp::Add)
                    .await?;
            }
            for g in &membership.removed {
                self.change_group_membership(&ident(g), &uid, EdgeOp::Remove)
                    .await?;
            }
        }
        Self::written(self.snapshot().await?, ResourceKind::User, id)
    }

    /// `PUT /Users/{id}`: a full replace at the SCIM level.
    pub async fn replace_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, _) = self.begin(ResourceKind::User, id, if_match).await?;
        self.update_user_to(&snap, id, body, &MembershipChange::default())
            .await
    }

    /// `PATCH /Users/{id}`: applied atomically to the current resource, sent as one update.
    pub async fn patch_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, entry) = self.begin(ResourceKind::User, id, if_match).await?;
        let outcome = self
            .apply_off_runtime(&entry, body, ResourceKind::User)
            .await?;
        if !outcome.changed && outcome.membership.is_empty() {
            return Ok(Written {
                entry,
                snapshot: snap,
            });
        }
        self.update_user_to(&snap, id, &outcome.resource, &outcome.membership)
            .await
    }

    /// `DELETE /Users/{id}` under `users.delete_mode`.
    pub async fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<(), WriteError> {
        let (_guard, snap, _) = self.begin(ResourceKind::User, id, if_match).await?;
        match self.settings.delete_mode {
            DeleteMode::Suspend => {
                let current = snap
                    .data
                    .users
                    .get(id)
                    .map(PackedUser::unpack)
                    .ok_or_else(not_ready)?;
                if current.state.as_deref() == Some("SUSPENDED") {
                    return Ok(());
                }
                let write = JcUserWrite {
                    state: Some("SUSPENDED".into()),
                    suspended: Some(true),
                    ..JcUserWrite::default()
                };
                let updated = self.send_user_update("the suspension", id, &write).await?;
                self.publish(|data| {
                    let uid = data.put_user(updated);
                    touched_user(&uid)
                })
                .await?;
                Ok(())
            }
            DeleteMode::Delete => {
                self.send_user_delete(id).await?;
                let uid = ident(id);
                self.publish(|data| data.remove_user(&uid)).await?;
                self.store.note_deletion(ResourceKind::User);
                Ok(())
            }
        }
    }
}
