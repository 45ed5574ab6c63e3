//! Every call to JumpCloud a write makes, how each kind of call is retried, and what the client is told.
//!
//! [`upstream_error`] maps a [`JcError`] onto the SCIM answer (status, detail, `Retry-After`); [`refusal`]
//! names a JumpCloud 400 by the SCIM attribute it concerns. Each `send_*` method is one kind of write call.
//!
//! # Retry policy
//!
//! One path: a write call that may be sent again is retried by [`RetryPolicy::run_gated`] (through
//! `retrying` below), with the policy of its kind from [`WriteRetries`]: exponential backoff with equal
//! jitter, a `Retry-After` honoured up to the policy's cap, and never a retry of the circuit breaker's
//! refusal (nothing was sent, and waiting out its cool-down would hold the write). Every attempt and every
//! lookup passes the client's upstream guard (breaker and in-flight bound; the guard's retry budget is for
//! reads, so a write's retries are bounded by their attempts and the deadline). The whole write, lookups
//! included, runs within the write deadline (`WriteSettings::deadline`, `Writer::bounded`); past it the
//! client is told the write may not have completed.
//!
//! What differs by kind is whether sending again can change the outcome:
//!
//! | Call | Attempts | Backoff, `Retry-After` cap | Before a retry | Ends at once on |
//! |---|---|---|---|---|
//! | user create | 3 | 300 ms · 2ⁿ up to 5 s; 5 s | after a failure that may have landed (sent, then a timeout or a 5xx), the user is looked up by its JumpCloud username: there with this email → it is the created user; there with another → 409; the lookup fails → 503 (it cannot be told) | 429 (JumpCloud did not take it; the client reschedules on `Retry-After`), the breaker's refusal, any answer that is not transient (a 400 is named by lookups of username, email and employeeNumber) |
//! | group create | 1 | — | after a failure that may have landed, the groups are listed and the one with this name is the created group | everything: a group create is sent once |
//! | user update, suspension, group replace | 3 | 250 ms · 2ⁿ up to 8 s; 30 s | nothing: the body holds absolute values | the breaker's refusal, any answer that is not transient |
//! | user and group delete | 3 | as updates | nothing: a 404 means an earlier attempt did it | as updates |
//! | member add/remove, directory bind/unbind | 3 | as updates | nothing: edges are idempotent ("Already Exists" on an add and a 404 on a removal are success) | as updates |
//!
//! A failure "may have landed" when the request reached JumpCloud and no answer refused it
//! ([`may_have_landed`]): a 429 is JumpCloud declining the request, and the breaker's refusal was never sent.

use std::future::Future;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{WriteError, Writer};
use crate::jumpcloud::{
    AssocTarget, Backoff, EdgeOp, JcDirectory, JcError, JcGroup, JcGroupWrite, JcUser, JcUserWrite,
    RetryPolicy, clamp_retry_after,
};
use crate::mapping::write::DesiredUser;
use crate::scim::error::{ScimError, excerpt};

/// The retry policy of each kind of write call: the table in the module docs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WriteRetries {
    /// A user create: sent again only after a lookup shows the last attempt did not land.
    pub create_user: RetryPolicy,
    /// A group create: sent once; a lost answer is resolved by a lookup.
    pub create_group: RetryPolicy,
    /// Updates (absolute values), deletes and membership and association edges: sending again cannot
    /// change the outcome.
    pub repeatable: RetryPolicy,
}

impl Default for WriteRetries {
    fn default() -> Self {
        let create_backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(5), 0.5)
            .expect("300 ms to 5 s with equal jitter is a valid backoff");
        Self {
            create_user: RetryPolicy {
                max_attempts: 3,
                backoff: create_backoff,
                retry_after_cap: Duration::from_secs(5),
            },
            create_group: RetryPolicy::no_retries(),
            repeatable: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
        }
    }
}

/// Whether a failed write may have been applied: the request reached JumpCloud and no answer refused it.
/// A 429 is JumpCloud declining the request; the breaker's refusal was never sent.
pub(super) fn may_have_landed(e: &JcError) -> bool {
    matches!(e, JcError::Transient { sent: true, status, .. } if *status != Some(429))
}

fn throttled(e: &JcError) -> bool {
    matches!(
        e,
        JcError::Transient {
            status: Some(429),
            ..
        }
    )
}

/// The one retry path of write calls: `call(attempt)` under `policy`, `may_retry` asked before each retry
/// the policy would make, each retry logged.
pub(super) async fn retrying<T, Fut>(
    policy: &RetryPolicy,
    what: &str,
    may_retry: impl FnMut(&JcError) -> bool,
    call: impl FnMut(u32) -> Fut,
) -> Result<T, JcError>
where
    Fut: Future<Output = Result<T, JcError>>,
{
    let mut rng = SmallRng::from_os_rng();
    let log = |ev: &crate::jumpcloud::RetryEvent<'_>| {
        tracing::debug!(
            write = what,
            attempt = ev.next_attempt,
            delay_ms = u64::try_from(ev.delay.as_millis()).unwrap_or(u64::MAX),
            error = %ev.error,
            "retrying JumpCloud write"
        );
    };
    policy.run_gated(&mut rng, may_retry, log, call).await
}

/// What looking for the result of a create that may have landed found.
#[derive(Debug)]
pub(super) enum Lookup<T> {
    /// It had landed: this is what it made.
    Landed(T),
    /// Nothing: sending it again cannot make two.
    Absent,
    /// The name is held by something this create did not make: the answer to give.
    Taken(WriteError),
    /// The lookup failed too: nobody can tell whether the create landed.
    Unknown,
}

/// How a create ended when it did not make anything it can show.
#[derive(Debug)]
pub(super) enum CreateFailed {
    /// A lookup settled it: the answer to give.
    Answered(WriteError),
    /// It may have landed and the lookup failed: the create's own error.
    Unknown(JcError),
    /// JumpCloud's last answer; nothing landed.
    Upstream(JcError),
}

/// Send a create under `policy`, never twice blindly: after a failure that may have landed, `look` says
/// whether it did before anything is sent again. A throttled create ends at once (JumpCloud did not take
/// it, and the client reschedules on `Retry-After`), as does the breaker's refusal.
pub(super) async fn create_resolved<T, S, SFut, L, LFut>(
    policy: &RetryPolicy,
    what: &str,
    send: S,
    look: L,
) -> Result<T, CreateFailed>
where
    S: Fn() -> SFut,
    SFut: Future<Output = Result<T, JcError>>,
    L: Fn() -> LFut,
    LFut: Future<Output = Lookup<T>>,
{
    let (send, look) = (&send, &look);
    let outcome = retrying(
        policy,
        what,
        |e| !throttled(e),
        move |_| async move {
            let e = match send().await {
                Ok(made) => return Ok(Ok(made)),
                Err(e) => e,
            };
            if !may_have_landed(&e) {
                return Err(e);
            }
            match look().await {
                Lookup::Landed(made) => Ok(Ok(made)),
                Lookup::Absent => Err(e),
                Lookup::Taken(answer) => Ok(Err(CreateFailed::Answered(answer))),
                Lookup::Unknown => Ok(Err(CreateFailed::Unknown(e))),
            }
        },
    )
    .await;
    match outcome {
        Ok(done) => done,
        Err(e) => Err(CreateFailed::Upstream(e)),
    }
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

impl Writer {
    /// Run a write within the deadline.
    pub(super) async fn bounded<T>(
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
            match retrying(&self.retries.repeatable, what, |_| true, |_| call()).await {
                Ok(_) => Ok(()),
                Err(JcError::NotFound { .. }) if gone_is_done => Ok(()),
                Err(e) => Err(upstream_error(&e, what)),
            }
        })
        .await
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

    /// Create a user: `POST /api/systemusers`, resolved by a lookup whenever its answer is lost.
    pub(super) async fn send_user_create(
        &self,
        d: &DesiredUser,
        username: &str,
        write: &JcUserWrite,
    ) -> Result<JcUser, WriteError> {
        const WHAT: &str = "the create";
        self.bounded(WHAT, async {
            let made = create_resolved(
                &self.retries.create_user,
                WHAT,
                || self.client.create_user(write),
                || self.look_for_created_user(d, username),
            )
            .await;
            match made {
                Ok(u) => Ok(u),
                Err(CreateFailed::Answered(answer)) => Err(answer),
                Err(CreateFailed::Unknown(_)) => Err(WriteError {
                    error: ScimError::new(
                        503,
                        None,
                        "JumpCloud is unavailable and it cannot be told whether the user was created; \
                         retry later (a retry of a completed create answers 409 with the user's id)",
                    ),
                    retry_after: Some(Duration::from_secs(30)),
                }),
                Err(CreateFailed::Upstream(e @ JcError::Rejected { .. })) => {
                    Err(self.classify_create_refusal(d, username, &e).await)
                }
                Err(CreateFailed::Upstream(e)) => Err(upstream_error(&e, WHAT)),
            }
        })
        .await
    }

    /// Whether a user create that may have landed did: JumpCloud holds a user under its username with its
    /// email.
    async fn look_for_created_user(&self, d: &DesiredUser, username: &str) -> Lookup<JcUser> {
        match self.find_user("username", username).await {
            Ok(Some(u))
                if u.email
                    .eq_ignore_ascii_case(d.email.as_deref().unwrap_or_default()) =>
            {
                tracing::info!(user = %u.id, "create answered with an error but had landed; using it");
                Lookup::Landed(u)
            }
            Ok(Some(u)) => Lookup::Taken(
                ScimError::uniqueness(format!(
                    "the JumpCloud username {username:?} is held by user {}",
                    u.id
                ))
                .into(),
            ),
            Ok(None) => Lookup::Absent,
            Err(_) => Lookup::Unknown,
        }
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

    /// Send a user update (absolute values), retried: sending it again cannot change the outcome.
    pub(super) async fn send_user_update(
        &self,
        what: &str,
        id: &str,
        write: &JcUserWrite,
    ) -> Result<JcUser, WriteError> {
        self.bounded(what, async {
            retrying(
                &self.retries.repeatable,
                what,
                |_| true,
                |_| self.client.update_user(id, write),
            )
            .await
            .map_err(|e| upstream_error(&e, what))
        })
        .await
    }

    /// Delete a user (clearing the manager of its reports); a retried delete whose first attempt landed
    /// finds nothing: done.
    pub(super) async fn send_user_delete(&self, id: &str) -> Result<(), WriteError> {
        self.send_repeatable("the delete", true, || self.client.delete_user(id, true))
            .await
    }

    /// Create a user group, sent once; when its answer is lost, the group is looked up by name.
    pub(super) async fn send_group_create(
        &self,
        name: &str,
        write: &JcGroupWrite,
    ) -> Result<JcGroup, WriteError> {
        const WHAT: &str = "the group create";
        self.bounded(WHAT, async {
            let made = create_resolved(
                &self.retries.create_group,
                WHAT,
                || self.client.create_group(write),
                || self.look_for_created_group(name),
            )
            .await;
            match made {
                Ok(g) => Ok(g),
                Err(CreateFailed::Answered(answer)) => Err(answer),
                Err(CreateFailed::Upstream(JcError::Conflict { .. })) => Err(
                    ScimError::uniqueness(format!("JumpCloud already has a group named {name:?}"))
                        .into(),
                ),
                Err(CreateFailed::Unknown(e) | CreateFailed::Upstream(e)) => {
                    Err(upstream_error(&e, WHAT))
                }
            }
        })
        .await
    }

    /// Whether a group create that may have landed did: JumpCloud holds a group of that name.
    async fn look_for_created_group(&self, name: &str) -> Lookup<JcGroup> {
        match self.client.list_groups().await {
            Ok(groups) => groups
                .into_iter()
                .find(|g| g.name.eq_ignore_ascii_case(name))
                .map_or(Lookup::Absent, Lookup::Landed),
            Err(_) => Lookup::Unknown,
        }
    }

    /// Replace a user group (name, description, attributes): absolute values, retried like an update.
    pub(super) async fn send_group_update(
        &self,
        gid: &str,
        name: &str,
        write: &JcGroupWrite,
    ) -> Result<JcGroup, WriteError> {
        const WHAT: &str = "the group update";
        self.bounded(WHAT, async {
            retrying(
                &self.retries.repeatable,
                WHAT,
                |_| true,
                |_| self.client.put_group(gid, write),
            )
            .await
            .map_err(|e| match e {
                JcError::Conflict { .. } => {
                    ScimError::uniqueness(format!("JumpCloud already has a group named {name:?}"))
                        .into()
                }
                e => upstream_error(&e, WHAT),
            })
        })
        .await
    }

    /// Delete a user group; "not found" means an earlier attempt already did.
    pub(super) async fn send_group_delete(&self, id: &str) -> Result<(), WriteError> {
        self.send_repeatable("the group delete", true, || self.client.delete_group(id))
            .await
    }

    /// Add a user to a user group or remove one; removing an absent member is a success: clients retry.
    pub(super) async fn send_membership(
        &self,
        gid: &str,
        op: EdgeOp,
        uid: &str,
    ) -> Result<(), WriteError> {
        self.send_repeatable("the membership change", op == EdgeOp::Remove, || {
            self.client.group_member(gid, op, uid)
        })
        .await
    }

    /// Bind a user to a directory or unbind it (a member of a directory listed as a group).
    pub(super) async fn send_directory_holder(
        &self,
        dir: &JcDirectory,
        op: EdgeOp,
        uid: &str,
    ) -> Result<(), WriteError> {
        self.send_repeatable(
            "the directory association change",
            op == EdgeOp::Remove,
            || {
                self.client
                    .directory_association(dir, op, AssocTarget::User, uid)
            },
        )
        .await
    }
}
