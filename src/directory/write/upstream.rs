//! Every call to JumpCloud a write makes, how a failure is retried, and what the client is told.
//!
//! [`upstream_error`] maps a [`JcError`] onto the SCIM answer (status, detail, `Retry-After`); [`refusal`]
//! names a JumpCloud 400 by the SCIM attribute it concerns. Each `send_*` method is one kind of write call,
//! run within the write deadline.

use std::time::Duration;

use super::{WriteError, Writer};
use crate::jumpcloud::{
    AssocTarget, EdgeOp, JcDirectory, JcError, JcGroup, JcGroupWrite, JcUser, JcUserWrite,
    clamp_retry_after,
};
use crate::mapping::write::DesiredUser;
use crate::scim::error::{ScimError, excerpt};

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
            match self.retry.run(|_| call()).await {
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

    /// Create a user: `POST /api/systemusers`, within the write deadline.
    pub(super) async fn send_user_create(
        &self,
        d: &DesiredUser,
        username: &str,
        write: &JcUserWrite,
    ) -> Result<JcUser, WriteError> {
        self.bounded("the create", self.send_create(d, username, write))
            .await
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
    pub(super) async fn send_user_update(
        &self,
        what: &str,
        id: &str,
        write: &JcUserWrite,
    ) -> Result<JcUser, WriteError> {
        self.bounded(what, async {
            self.retry
                .run(|_| self.client.update_user(id, write))
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

    /// Create a user group. When the answer is lost, the group is looked up by name before anything else.
    pub(super) async fn send_group_create(
        &self,
        name: &str,
        write: &JcGroupWrite,
    ) -> Result<JcGroup, WriteError> {
        self.bounded("the group create", async {
            match self.client.create_group(write).await {
                Ok(g) => Ok(g),
                Err(e @ JcError::Transient { sent: true, .. }) => {
                    // The create may have landed: look before anything else.
                    match self.client.list_groups().await {
                        Ok(groups) => match groups
                            .into_iter()
                            .find(|g| g.name.eq_ignore_ascii_case(name))
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
        .await
    }

    /// Replace a user group (name, description, attributes): absolute values, retried like an update.
    pub(super) async fn send_group_update(
        &self,
        gid: &str,
        name: &str,
        write: &JcGroupWrite,
    ) -> Result<JcGroup, WriteError> {
        self.bounded("the group update", async {
            self.retry
                .run(|_| self.client.put_group(gid, write))
                .await
                .map_err(|e| match e {
                    JcError::Conflict { .. } => ScimError::uniqueness(format!(
                        "JumpCloud already has a group named {name:?}"
                    ))
                    .into(),
                    e => upstream_error(&e, "the group update"),
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
