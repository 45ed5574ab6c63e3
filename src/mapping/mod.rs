//! The only place that sees both worlds: JumpCloud users, groups and directories ↔ SCIM resources.
//!
//! Pure functions, table-tested. Reading (`*_to_scim`) produces a resource without `meta` (the snapshot
//! adds it, since `meta` depends on when the content was first seen); writing (`scim_*_to_jc`) turns a
//! SCIM resource into the JumpCloud body that produces exactly it: [`write`] for users, [`group_write`] for
//! groups, and [`username`] for the JumpCloud username a `userName` becomes.

mod group;
pub mod group_write;
mod user;
pub mod username;
pub mod write;

pub use group::{
    GroupMember, directory_display, directory_to_scim, group_external_id, group_to_scim,
};
pub use user::{
    Entitlement, GroupRef, UserContext, served_user_name, user_display, user_external_id,
    user_to_scim,
};
pub use username::UsernamePolicy;

/// SCIM schema URNs used by the mapping, by short names (defined once, in `crate::scim::schema`).
pub mod urn {
    pub use crate::scim::schema::{
        ENTERPRISE_USER_URN as ENTERPRISE, GROUP_URN as GROUP, JUMPCLOUD_GROUP_URN as JC_GROUP,
        JUMPCLOUD_USER_URN as JC_USER, USER_URN as USER,
    };
}

/// JumpCloud custom attribute keeping the client's primary email exactly as sent, when its case differs
/// from the lower-cased address JumpCloud stores, so the value a client wrote is the value it reads.
pub const EMAIL_CASE_ATTRIBUTE: &str = "scimEmail";

/// JumpCloud custom attribute keeping `emails` exactly as a client wrote them (JSON), when that differs
/// from JumpCloud's own two addresses as `work` (primary) and `other`.
pub const EMAILS_ATTRIBUTE: &str = "scimEmails";

/// JumpCloud custom attribute keeping `name.formatted` exactly as a client wrote it.
pub const NAME_FORMATTED_ATTRIBUTE: &str = "scimNameFormatted";

/// The longest string JumpCloud holds in a user's text fields and custom attribute values.
pub const MAX_TEXT: usize = 1024;

/// The longest `employeeIdentifier` JumpCloud holds.
pub const MAX_EMPLOYEE_ID: usize = 256;

/// Settings the mapping needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingOptions {
    /// JumpCloud custom attribute holding the client's exact userName.
    pub username_attribute: String,
    /// JumpCloud custom attribute (users) and group `attributes` key (groups) holding externalId.
    pub external_id_attribute: String,
    /// SCIM base URL, e.g. `http://127.0.0.1:8080/scim/v2`, for `$ref`s.
    pub scim_base: String,
}

impl Default for MappingOptions {
    fn default() -> Self {
        Self {
            username_attribute: "scimUserName".into(),
            external_id_attribute: "scimExternalId".into(),
            scim_base: "http://localhost/scim/v2".into(),
        }
    }
}

/// The kind of a directory a user can hold, as SCIM `entitlements[].type` and the Group extension's `groupType`.
pub fn directory_type_name(kind: &crate::jumpcloud::JcDirectoryKind) -> Option<&'static str> {
    use crate::jumpcloud::JcDirectoryKind as K;
    match kind {
        K::ActiveDirectory => Some("active_directory"),
        K::GSuite => Some("g_suite"),
        K::Office365 => Some("office_365"),
        K::Other(_) => None,
    }
}

/// A non-empty string or nothing: JumpCloud sends `""` for unset strings. Values are kept exactly as stored.
fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}
