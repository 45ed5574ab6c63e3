//! Writes: SCIM creates, replaces, patches and deletes carried to JumpCloud exactly once, then published
//! into the snapshot at once (read-your-writes).
//!
//! Rules that make "exactly once" hold:
//! - A create is never retried blindly. When its answer is lost (timeout, a 502 after sending), the user is
//!   looked up by its JumpCloud username before anything is sent again; a client retrying a create we
//!   completed gets 409 `uniqueness` naming the existing id.
//! - An update sends absolute values, so sending it again cannot change the outcome: it is retried on
//!   transient failures within the write deadline.
//! - Membership and association edges are idempotent by nature ("Already Exists" is success).
//! - Writes to one resource are serialised (striped locks keyed by id or userName).
//!
//! Knows JumpCloud only through `crate::jumpcloud`'s client and `crate::mapping`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use super::WriteError;
use crate::cache::snapshot::etag_listed;
use crate::cache::{Data, Entry, GroupSource, Id, Kind, Snapshot, Store, Touched};
use crate::config::DeleteMode;
use crate::jumpcloud::{
    AssocTarget, EdgeOp, JcClient, JcDirectory, JcError, JcUser, JcUserWrite, RetryPolicy,
    clamp_retry_after,
};
use crate::mapping::group_write::{DesiredGroup, desired_group, group_write, member_ids};
pub use crate::mapping::username::{derive_username, valid_jumpcloud_username};
use crate::mapping::write::{DesiredUser, desired_user, is_noop, user_write};
use crate::mapping::{self, MappingOptions, UsernamePolicy};
use crate::scim::ResourceKind;
use crate::scim::error::ScimError;
use crate::scim::error::excerpt;
use crate::scim::patch::{MembershipChange, PatchOptions, apply_patch};

/// Lock stripes: enough that unrelated writes rarely wait on each other.
const STRIPES: usize = 64;
/// How long a write waits for JumpCloud's data behind a snapshot restored from disk (it takes about a
/// second for 100,000 users) before answering 503.
const COMPLETE_WAIT: Duration = Duration::from_secs(10);

/// How writes behave.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub username_policy: UsernamePolicy,
    pub delete_mode: DeleteMode,
    pub mapping: MappingOptions,
    /// A write answers within this, whatever JumpCloud does (clients give up at 60 s).
    pub deadline: Duration,
    /// PATCH bounds and reference resolution.
    pub patch: PatchOptions,
    /// PATCH applications running at once, on blocking threads rather than the async workers.
    pub cpu_tasks: usize,
}

/// Carries SCIM writes to JumpCloud and publishes their results.
pub struct Writer {
    store: Arc<Store>,
    client: JcClient,
    settings: WriteSettings,
    stripes: Vec<Mutex<()>>,
    /// Retries for updates (absolute values) and idempotent edges.
    retry: RetryPolicy,
    /// Bounds CPU-heavy work (PATCH application) taken off the async workers.
    cpu: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A created or changed resource, and the snapshot version that shows it.
#[derive(Debug, Clone)]
pub struct Written {
    pub entry: Arc<Entry>,
    pub snapshot: Arc<Snapshot>,
}

fn stripe_of(key: &str) -> usize {
    // FNV-1a: stable and cheap; only the spread matters.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.to_lowercase().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % STRIPES as u64) as usize
}

/// Map a JumpCloud failure onto what the client should see.
pub fn upstream_error(e: &JcError, what: &str) -> WriteError {
    match e {
        JcError::Transient {
            status: Some(429),
            retry_after,
            ..
        } => WriteError {
            error: ScimError::new(
                429,
                None,
                format!("JumpCloud is throttling requests; {what} was not done, retry later"),
            ),
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(5))),
        },
        JcError::Transient {
            status,
            retry_after,
            ..
        } => WriteError {
            error: ScimError::new(
                503,
                None,
                format!(
                    "JumpCloud is unavailable ({}); {what} was not done, retry later",
                    status.map_or("no answer".to_string(), |s| format!("HTTP {s}"))
                ),
            ),
            // An open circuit breaker knows when it will try JumpCloud again; a gateway's own hint is kept
            // within a minute.
            retry_after: Some(retry_after.map_or(Duration::from_secs(30), |ra| {
                clamp_retry_after(ra, Duration::from_secs(1), Duration::from_secs(60))
            })),
        },
        JcError::Rejected {
            message,
            field_violations,
            ..
        } => WriteError::from(refusal(what, message, field_violations)),
        JcError::NotFound { .. } => WriteError::from(ScimError::not_found(format!(
            "{what}: no longer exists in JumpCloud"
        ))),
        JcError::Conflict { message } => WriteError::from(ScimError::uniqueness(format!(
            "{what}: JumpCloud reports a conflict: {message}"
        ))),
        JcError::Unauthorized { status } => WriteError {
            error: ScimError::new(
                503,
                None,
                format!(
                    "JumpCloud refused this service's API key (HTTP {status}); an operator must fix jumpcloud.api_key"
                ),
            ),
            retry_after: Some(Duration::from_secs(60)),
        },
        JcError::Protocol { message } => WriteError {
            error: ScimError::new(
                503,
                None,
                format!(
                    "JumpCloud answered unexpectedly ({message}); {what} may not have been done"
                ),
            ),
            retry_after: Some(Duration::from_secs(30)),
        },
    }
}

/// The SCIM attribute a JumpCloud user field holds (the names a JumpCloud 400 uses).
fn scim_attribute(field: &str) -> &str {
    match field {
        "username" => "userName (the JumpCloud username derived from it)",
        "email" | "alternateEmail" => "emails",
        "firstname" => "name.givenName",
        "middlename" => "name.middleName",
        "lastname" => "name.familyName",
        "displayname" => "displayName",
        "jobTitle" => "title",
        "employeeType" => "userType",
        "employeeIdentifier" => {
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
        }
        "company" => "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
        "costCenter" => "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        "department" => "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "manager" => "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "description" => "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:description",
        "attributes" => "userName or externalId (kept in JumpCloud custom attributes)",
        "name" => "displayName",
        other => other,
    }
}

/// A JumpCloud 400, named by what it concerns: the password policy only for the password, otherwise the
/// field JumpCloud named, or JumpCloud's own words.
pub fn refusal(what: &str, message: &str, field_violations: &[(String, String)]) -> ScimError {
    match field_violations.first() {
        Some((field, rule)) if field.eq_ignore_ascii_case("password") => {
            ScimError::invalid_value(format!(
                "JumpCloud's password policy refused the password: {}",
                excerpt(rule)
            ))
        }
        Some((field, rule)) => ScimError::invalid_value(format!(
            "JumpCloud refused {}: {}",
            scim_attribute(field),
            excerpt(rule)
        )),
        None => ScimError::invalid_value(format!("JumpCloud refused {what}: {}", excerpt(message))),
    }
}

fn not_ready() -> WriteError {
    WriteError {
        error: ScimError::new(
            503,
            None,
            "the directory has not been loaded from JumpCloud yet; retry shortly",
        ),
        retry_after: Some(Duration::from_secs(5)),
    }
}

fn ident(id: &str) -> Id {
    Arc::from(id)
}

fn touched_user(uid: &Id) -> Touched {
    let mut t = Touched::default();
    t.users.insert(uid.clone());
    t
}

// === impl Writer ===

impl Writer {
    /// The upstream circuit breaker's state, for the metrics gauge (0 closed, 1 half-open, 2 open).
    pub fn breaker_state(&self) -> u8 {
        self.client.breaker().state_code()
    }

    pub fn new(store: Arc<Store>, client: JcClient, settings: WriteSettings) -> Self {
        Self {
            store,
            client,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            cpu: Arc::new(tokio::sync::Semaphore::new(settings.cpu_tasks.max(1))),
            settings,
        }
    }

    /// Apply a PATCH to an entry on a blocking thread (at most `cpu_tasks` at once), so that however large
    /// it is, the async workers keep answering everyone else.
    async fn apply_off_runtime(
        &self,
        entry: &Arc<Entry>,
        body: &Value,
        kind: ResourceKind,
    ) -> Result<crate::scim::PatchOutcome, WriteError> {
        let _permit = self.cpu.acquire().await.map_err(|_| not_ready())?;
        let (entry, body, options) = (entry.clone(), body.clone(), self.settings.patch.clone());
        tokio::task::spawn_blocking(move || apply_patch(entry.json(), &body, kind, &options))
            .await
            .map_err(|_| {
                WriteError::from(ScimError::new(
                    500,
                    None,
                    "the PATCH could not be applied; nothing was changed",
                ))
            })?
            .map_err(WriteError::from)
    }

    async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        self.stripes[stripe_of(key)].lock().await
    }

    /// The published snapshot a write works against: a complete one, so right after a restart from disk the
    /// write waits the moment JumpCloud's data takes to restore.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, WriteError> {
        self.store
            .load_complete(COMPLETE_WAIT)
            .await
            .ok_or_else(not_ready)
    }

    /// Run a write within the deadline.
    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, WriteError>>,
    ) -> Result<T, WriteError> {
        match tokio::time::timeout(self.settings.deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(WriteError {
                error: ScimError::new(
                    503,
                    None,
                    format!(
                        "JumpCloud did not answer in time; {what} may not have completed, read the resource before retrying"
                    ),
                ),
                retry_after: Some(Duration::from_secs(30)),
            }),
        }
    }

    /// Send a call that repeating cannot change (a delete, a membership or association edge), retrying
    /// transient failures within the write deadline; with `gone_is_done`, "not found" means already done.
    async fn send_repeatable<T, Fut>(
        &self,
        what: &str,
        gone_is_done: bool,
        call: impl Fn() -> Fut,
    ) -> Result<(), WriteError>
    where
        Fut: Future<Output = Result<T, JcError>>,
    {
        self.bounded(what, async {
            match self.retry.run(|_| call()).await {
                Ok(_) => Ok(()),
                Err(JcError::NotFound { .. }) if gone_is_done => Ok(()),
                Err(e) => Err(upstream_error(&e, what)),
            }
        })
        .await
    }

    fn entry(snap: &Snapshot, kind: Kind, id: &str) -> Result<Arc<Entry>, WriteError> {
        snap.get(kind, id).cloned().ok_or_else(|| {
            WriteError::from(ScimError::not_found(format!(
                "{} {id} not found",
                kind.resource_type()
            )))
        })
    }

    /// The start of every write to an existing resource: take its lock, then read the current version and
    /// check `If-Match` against it (after the lock, so a queued write sees what the one before it did).
    async fn begin(
        &self,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(MutexGuard<'_, ()>, Arc<Snapshot>, Arc<Entry>), WriteError> {
        let guard = self.lock(id).await;
        let snap = self.snapshot().await?;
        let entry = Self::entry(&snap, kind, id)?;
        check_if_match(if_match, &entry)?;
        Ok((guard, snap, entry))
    }

    fn written(snap: Arc<Snapshot>, kind: Kind, id: &str) -> Result<Written, WriteError> {
        let entry = Self::entry(&snap, kind, id)?;
        Ok(Written {
            entry,
            snapshot: snap,
        })
    }

    async fn publish(
        &self,
        change: impl FnOnce(&mut Data) -> Touched,
    ) -> Result<Arc<Snapshot>, WriteError> {
        self.store.publish_write(change).await.ok_or_else(not_ready)
    }

    // === users ===

    /// Uniqueness of userName, email and employeeNumber among users other than `except`.
    fn check_user_unique(
        snap: &Snapshot,
        d: &DesiredUser,
        except: Option<&str>,
    ) -> Result<(), WriteError> {
        let idx = &snap.indexes;
        let others = |set: Option<&crate::cache::IdSet>| -> Option<Id> {
            set.into_iter()
                .flatten()
                .find(|id| Some(id.as_ref()) != except)
                .cloned()
        };
        if let Some(other) = others(idx.user_name.get(d.user_name.to_lowercase().as_str())) {
            return Err(ScimError::uniqueness(format!(
                "userName {:?} is already taken by user {other}",
                d.user_name
            ))
            .into());
        }
        if let Some(email) = &d.email {
            let lower = email.to_lowercase();
            let holder = idx
                .email
                .get(lower.as_str())
                .into_iter()
                .flatten()
                .find(|id| {
                    Some(id.as_ref()) != except
                        && snap
                            .data
                            .users
                            .get(*id)
                            .is_some_and(|u| u.email.eq_ignore_ascii_case(&lower))
                });
            if let Some(other) = holder {
                return Err(ScimError::uniqueness(format!(
                    "email {email:?} is already the email of user {other}"
                ))
                .into());
            }
        }
        if let Some(n) = &d.employee_identifier
            && let Some(other) = others(idx.employee_number.get(n.to_lowercase().as_str()))
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
        if let Some(holder) =
            snap.data.users.values().find(|u| {
                u.username.eq_ignore_ascii_case(&username) && Some(u.id.as_str()) != except
            })
        {
            return Err(ScimError::uniqueness(format!(
                "the JumpCloud username {username:?} derived from userName {:?} is already held by user {} ({:?})",
                d.user_name,
                holder.id,
                mapping::served_user_name(holder, &self.settings.mapping)
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

    /// Find a user JumpCloud holds by one field, for resolving ambiguous and refused creates.
    async fn find_user(&self, field: &str, value: &str) -> Result<Option<JcUser>, JcError> {
        Ok(self
            .client
            .find_users(field, value)
            .await?
            .into_iter()
            .next())
    }

    /// `POST /Users`.
    pub async fn create_user(&self, body: &Value) -> Result<Written, WriteError> {
        let d = desired_user(body, &self.settings.mapping)
            .map_err(|e| ScimError::invalid_value(e.0))?;
        Self::require_email(&d)?;
        self.check_capacity(&d)?;
        let _guard = self.lock(&d.user_name).await;
        let snap = self.snapshot().await?;
        Self::check_user_unique(&snap, &d, None)?;
        Self::check_manager(&snap, &d, None)?;
        let username = self.username_for(&snap, &d, None)?;
        let write = user_write(&d, None, Some(&username), &self.settings.mapping);
        let created = self
            .bounded("the create", self.send_create(&d, &username, &write))
            .await?;
        let snap = self
            .publish(|data| {
                let uid = data.put_user(created.clone());
                touched_user(&uid)
            })
            .await?;
        Self::written(snap, Kind::User, &created.id)
    }

    async fn send_create(
        &self,
        d: &DesiredUser,
        username: &str,
        write: &JcUserWrite,
    ) -> Result<JcUser, WriteError> {
        let attempts = 3;
        for attempt in 0..attempts {
            match self.client.create_user(write).await {
                Ok(u) => return Ok(u),
                // Throttled: JumpCloud did not take the request; the client reschedules on Retry-After.
                Err(
                    e @ JcError::Transient {
                        status: Some(429), ..
                    },
                ) => return Err(upstream_error(&e, "the create")),
                // The circuit breaker is open: nothing was sent, and asking again now would fail the same way.
                Err(e) if e.is_fail_fast() => return Err(upstream_error(&e, "the create")),
                Err(e) if e.is_transient() => {
                    let sent = matches!(e, JcError::Transient { sent: true, .. });
                    if sent {
                        // The create may have landed: look before sending it again.
                        match self.find_user("username", username).await {
                            Ok(Some(u))
                                if u.email.eq_ignore_ascii_case(
                                    d.email.as_deref().unwrap_or_default(),
                                ) =>
                            {
                                tracing::info!(user = %u.id, "create answered with an error but had landed; using it");
                                return Ok(u);
                            }
                            Ok(Some(u)) => {
                                return Err(ScimError::uniqueness(format!(
                                    "the JumpCloud username {username:?} is held by user {}",
                                    u.id
                                ))
                                .into());
                            }
                            Ok(None) => {}
                            Err(_) => {
                                return Err(WriteError {
                                    error: ScimError::new(
                                        503,
                                        None,
                                        "JumpCloud is unavailable and it cannot be told whether the user was created; \
                                         retry later (a retry of a completed create answers 409 with the user's id)",
                                    ),
                                    retry_after: Some(Duration::from_secs(30)),
                                });
                            }
                        }
                    }
                    if attempt + 1 == attempts {
                        return Err(upstream_error(&e, "the create"));
                    }
                    let delay = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(300 << attempt))
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(delay).await;
                }
                Err(e @ JcError::Rejected { .. }) => {
                    return Err(self.classify_create_refusal(d, username, &e).await);
                }
                Err(e) => return Err(upstream_error(&e, "the create")),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// JumpCloud's 400 messages are not documented: find out whether the user already exists.
    async fn classify_create_refusal(
        &self,
        d: &DesiredUser,
        username: &str,
        e: &JcError,
    ) -> WriteError {
        // A password refusal is about the password; anything else may be a duplicate JumpCloud words
        // its own way, so look first.
        if let JcError::Rejected {
            message,
            field_violations,
            ..
        } = e
            && field_violations
                .first()
                .is_some_and(|(f, _)| f.eq_ignore_ascii_case("password"))
        {
            return refusal("the create", message, field_violations).into();
        }
        let mut probes: Vec<(&str, &str, &str)> =
            vec![("username", username, "JumpCloud username")];
        if let Some(email) = &d.email {
            probes.push(("email", email.as_str(), "email"));
        }
        if let Some(n) = &d.employee_identifier {
            probes.push(("employeeIdentifier", n.as_str(), "employeeNumber"));
        }
        for (field, value, label) in probes {
            let value = if field == "email" {
                value.to_lowercase()
            } else {
                value.to_string()
            };
            if let Ok(Some(u)) = self.find_user(field, &value).await {
                return ScimError::uniqueness(format!(
                    "{label} {value:?} is already held by user {}",
                    u.id
                ))
                .into();
            }
        }
        upstream_error(e, "the create")
    }

    /// Send an update (absolute values), retrying transient failures: re-sending cannot change the outcome.
    async fn send_update(&self, id: &str, write: &JcUserWrite) -> Result<JcUser, WriteError> {
        self.retry
            .run(|_| self.client.update_user(id, write))
            .await
            .map_err(|e| upstream_error(&e, "the update"))
    }

    /// Make the user with `id` say what `resource` says; `membership` carries `groups` changes of a PATCH.
    async fn update_user_to(
        &self,
        snap: &Snapshot,
        id: &str,
        resource: &Value,
        membership: &MembershipChange,
    ) -> Result<Written, WriteError> {
        let current = snap.data.users.get(id).cloned().ok_or_else(|| {
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
        for g in membership.added.iter().chain(&membership.removed) {
            if !snap.groups.contains_key(g.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "groups: {} is not a group of this directory",
                    excerpt(g)
                ))
                .into());
            }
        }
        let write = user_write(
            &d,
            Some(&current),
            username.as_deref(),
            &self.settings.mapping,
        );
        let uid = ident(id);
        if !is_noop(&write) {
            let updated = self
                .bounded("the update", self.send_update(id, &write))
                .await?;
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
        Self::written(self.snapshot().await?, Kind::User, id)
    }

    /// `PUT /Users/{id}`: a full replace at the SCIM level.
    pub async fn replace_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, _) = self.begin(Kind::User, id, if_match).await?;
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
        let (_guard, snap, entry) = self.begin(Kind::User, id, if_match).await?;
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
        let (_guard, snap, _) = self.begin(Kind::User, id, if_match).await?;
        match self.settings.delete_mode {
            DeleteMode::Suspend => {
                let current = snap.data.users.get(id).cloned().ok_or_else(not_ready)?;
                if current.state.as_deref() == Some("SUSPENDED") {
                    return Ok(());
                }
                let write = JcUserWrite {
                    state: Some("SUSPENDED".into()),
                    suspended: Some(true),
                    ..JcUserWrite::default()
                };
                let updated = self
                    .bounded("the suspension", self.send_update(id, &write))
                    .await?;
                self.publish(|data| {
                    let uid = data.put_user(updated);
                    touched_user(&uid)
                })
                .await?;
                Ok(())
            }
            DeleteMode::Delete => {
                // A retried delete whose first attempt landed finds nothing: done.
                self.send_repeatable("the delete", true, || self.client.delete_user(id, true))
                    .await?;
                let uid = ident(id);
                self.publish(|data| data.remove_user(&uid)).await?;
                self.store.note_deletion(Kind::User);
                Ok(())
            }
        }
    }

    // === groups ===

    fn check_group_name_free(
        snap: &Snapshot,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), WriteError> {
        if let Some(other) = snap
            .indexes
            .group_name
            .get(name.to_lowercase().as_str())
            .into_iter()
            .flatten()
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
        let _guard = self.lock(&format!("group:{name}")).await;
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
        let group = self
            .bounded("the group create", async {
                match self.client.create_group(&write).await {
                    Ok(g) => Ok(g),
                    Err(e @ JcError::Transient { sent: true, .. }) => {
                        // The create may have landed: look before anything else.
                        match self.client.list_groups().await {
                            Ok(groups) => match groups
                                .into_iter()
                                .find(|g| g.name.eq_ignore_ascii_case(&name))
                            {
                                Some(g) => Ok(g),
                                None => Err(upstream_error(&e, "the group create")),
                            },
                            Err(_) => Err(upstream_error(&e, "the group create")),
                        }
                    }
                    Err(JcError::Conflict { .. }) => Err(ScimError::uniqueness(format!(
                        "JumpCloud already has a group named {name:?}"
                    ))
                    .into()),
                    Err(e) => Err(upstream_error(&e, "the group create")),
                }
            })
            .await?;
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
        Self::written(self.snapshot().await?, Kind::Group, &group.id)
    }

    /// Add or remove one user on a user group or a directory listed as a group, and publish it.
    async fn change_group_membership(
        &self,
        gid: &Id,
        uid: &Id,
        op: EdgeOp,
    ) -> Result<(), WriteError> {
        let snap = self.snapshot().await?;
        let source = snap.get(Kind::Group, gid).and_then(|e| e.group_source);
        match source {
            Some(GroupSource::UserGroup) => {
                let already = snap.data.members.get(gid).is_some_and(|s| s.contains(uid));
                if (op == EdgeOp::Add) == already {
                    return Ok(());
                }
                // Removing an absent member is a success: clients retry.
                self.send_repeatable("the membership change", op == EdgeOp::Remove, || {
                    self.client.group_member(gid, op, uid)
                })
                .await?;
                let (g, u) = (gid.clone(), uid.clone());
                self.publish(move |data| {
                    match op {
                        EdgeOp::Add => data.add_member(&g, &u),
                        EdgeOp::Remove => data.remove_member(&g, &u),
                    }
                    let mut t = Touched::default();
                    t.groups.insert(g);
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
        self.send_repeatable(
            "the directory association change",
            op == EdgeOp::Remove,
            || {
                self.client
                    .directory_association(&dir, op, AssocTarget::User, uid)
            },
        )
        .await?;
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
        for (done, (m, op)) in changes.enumerate() {
            self.change_group_membership(gid, &ident(m), op)
                .await
                .map_err(|e| {
                    partial(e, &format!("{done} of {total} member changes were applied"))
                })?;
        }
        Ok(())
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
        let updated = self
            .bounded("the group update", async {
                self.retry
                    .run(|_| self.client.put_group(gid, &write))
                    .await
                    .map_err(|e| match e {
                        JcError::Conflict { .. } => ScimError::uniqueness(format!(
                            "JumpCloud already has a group named {name:?}"
                        ))
                        .into(),
                        e => upstream_error(&e, "the group update"),
                    })
            })
            .await?;
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
        let (_guard, snap, entry) = self.begin(Kind::Group, id, if_match).await?;
        let DesiredGroup {
            name,
            external_id,
            description,
            members,
        } = desired_group(body, &self.settings.patch.refs)?;
        let gid = ident(id);
        if entry.group_source == Some(GroupSource::Directory) {
            let current = entry
                .json()
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if current != name {
                Self::refuse_directory_change(&entry, "renaming")?;
            }
        } else {
            self.update_group_fields(
                &snap,
                &gid,
                &name,
                external_id.as_deref(),
                description.as_deref(),
            )
            .await?;
        }
        let want: BTreeSet<String> = members.unwrap_or_default().into_iter().collect();
        let have: BTreeSet<String> = member_ids(entry.json());
        let added: Vec<String> = want.difference(&have).cloned().collect();
        let removed: Vec<String> = have.difference(&want).cloned().collect();
        self.apply_membership(&gid, &added, &removed).await?;
        Self::written(self.snapshot().await?, Kind::Group, id)
    }

    /// `PATCH /Groups/{id}`.
    pub async fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Written, WriteError> {
        let (_guard, snap, entry) = self.begin(Kind::Group, id, if_match).await?;
        let outcome = self
            .apply_off_runtime(&entry, body, ResourceKind::Group)
            .await?;
        let gid = ident(id);
        let DesiredGroup {
            name,
            external_id,
            description,
            ..
        } = desired_group(&outcome.resource, &self.settings.patch.refs)?;
        if entry.group_source == Some(GroupSource::Directory) {
            let current = entry
                .json()
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if current != name || outcome.resource.get("externalId").is_some() {
                Self::refuse_directory_change(&entry, "changing its name or externalId")?;
            }
        } else {
            self.update_group_fields(
                &snap,
                &gid,
                &name,
                external_id.as_deref(),
                description.as_deref(),
            )
            .await?;
        }
        self.apply_membership(&gid, &outcome.membership.added, &outcome.membership.removed)
            .await?;
        Self::written(self.snapshot().await?, Kind::Group, id)
    }

    /// `DELETE /Groups/{id}`.
    pub async fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<(), WriteError> {
        let (_guard, _, entry) = self.begin(Kind::Group, id, if_match).await?;
        Self::refuse_directory_change(&entry, "deleting")?;
        self.send_repeatable("the group delete", true, || self.client.delete_group(id))
            .await?;
        let gid = ident(id);
        self.publish(|data| data.remove_group(&gid)).await?;
        self.store.note_deletion(Kind::Group);
        Ok(())
    }
}

/// `If-Match` with a stale ETag → 412.
fn check_if_match(if_match: Option<&str>, entry: &Entry) -> Result<(), WriteError> {
    let Some(header) = if_match else {
        return Ok(());
    };
    if etag_listed(header, &entry.etag) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {header} does not match the current version {} of {}; read it again",
            entry.etag, entry.id
        ))
        .into())
    }
}

/// Say which part of a multi-call write landed.
fn partial(mut e: WriteError, landed: &str) -> WriteError {
    e.error.detail = format!("{landed}: {}", e.error.detail);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_client_answers() {
        let t = |status| JcError::Transient {
            status,
            retry_after: None,
            message: String::new(),
            sent: true,
        };
        let e = upstream_error(&t(Some(502)), "the create");
        assert_eq!(e.error.status, 503);
        assert!(e.retry_after.is_some());
        // An open breaker: 503 with the rest of its cool-down.
        let e = upstream_error(&JcError::breaker_open(Duration::from_secs(12)), "x");
        assert_eq!(
            (e.error.status, e.retry_after),
            (503, Some(Duration::from_secs(12)))
        );
        let e = upstream_error(
            &JcError::Transient {
                status: Some(429),
                retry_after: Some(Duration::from_secs(7)),
                message: String::new(),
                sent: true,
            },
            "x",
        );
        assert_eq!(
            (e.error.status, e.retry_after),
            (429, Some(Duration::from_secs(7)))
        );
        let e = upstream_error(
            &JcError::Rejected {
                status: 400,
                message: "Password validation fail".into(),
                field_violations: vec![("password".into(), "minLength".into())],
            },
            "x",
        );
        assert_eq!(e.error.status, 400);
        assert!(e.error.detail.contains("minLength"));
        let e = upstream_error(&JcError::Unauthorized { status: 401 }, "x");
        assert_eq!(e.error.status, 503);
    }

    #[test]
    fn stripes_spread_and_ignore_case() {
        assert_eq!(stripe_of("Jane@Example.com"), stripe_of("jane@example.com"));
        let distinct: BTreeSet<usize> = (0..200).map(|i| stripe_of(&format!("user{i}"))).collect();
        assert!(distinct.len() > 40);
    }
}
