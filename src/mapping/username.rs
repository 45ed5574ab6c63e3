//! The JumpCloud username a SCIM `userName` becomes: JumpCloud's rule for usernames, and the policy
//! (`users.username_policy`) that derives one from a `userName` that is often an email address.
//!
//! The client's exact `userName` is kept beside it in a custom attribute
//! ([`MappingOptions::username_attribute`](super::MappingOptions)), so what a client wrote is what it reads.

use serde::{Deserialize, Serialize};

use crate::scim::error::ScimError;

/// How a SCIM `userName` becomes a JumpCloud username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsernamePolicy {
    /// What comes before an `@`, stripped to the characters JumpCloud allows (`u` in front when it would
    /// not start with a letter).
    LocalPart,
    /// The `userName` itself, refused when JumpCloud would not take it.
    Verbatim,
}

/// JumpCloud's username rule: starts with a letter; letters, digits, `.`, `_`, `-`; no `@`, no spaces.
pub fn valid_jumpcloud_username(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The JumpCloud username for a SCIM userName under a policy.
pub fn derive_username(user_name: &str, policy: UsernamePolicy) -> Result<String, ScimError> {
    match policy {
        UsernamePolicy::Verbatim => {
            if valid_jumpcloud_username(user_name) {
                Ok(user_name.to_string())
            } else {
                Err(ScimError::invalid_value(format!(
                    "userName {user_name:?} is not a valid JumpCloud username: it must start with a letter and hold \
                     only letters, digits, '.', '_' and '-' (no '@', no spaces); set users.username_policy = \
                     \"local-part\" to derive one"
                )))
            }
        }
        UsernamePolicy::LocalPart => {
            let local = user_name.split('@').next().unwrap_or_default();
            let mut out: String = local
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .collect();
            if out.is_empty() {
                return Err(ScimError::invalid_value(format!(
                    "userName {user_name:?} has no letters or digits before '@' to derive a JumpCloud username from"
                )));
            }
            if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
                out.insert(0, 'u');
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_derive_by_policy() {
        use UsernamePolicy::*;
        for (input, policy, want) in [
            ("jane.doe@example.com", LocalPart, Ok("jane.doe")),
            ("Jane Doe@example.com", LocalPart, Ok("JaneDoe")),
            ("1234@example.com", LocalPart, Ok("u1234")),
            ("_x@example.com", LocalPart, Ok("u_x")),
            ("jdoe", LocalPart, Ok("jdoe")),
            ("@example.com", LocalPart, Err(())),
            ("jdoe", Verbatim, Ok("jdoe")),
            ("jane@example.com", Verbatim, Err(())),
            ("9lives", Verbatim, Err(())),
        ] {
            let got = derive_username(input, policy).map_err(|_| ());
            assert_eq!(
                got.as_deref(),
                want.as_deref().map_err(|_| &()),
                "{input} {policy:?}"
            );
        }
        let err = derive_username("jane@example.com", Verbatim).unwrap_err();
        assert!(err.detail.contains("must start with a letter"));
    }

    #[test]
    fn jumpcloud_usernames_start_with_a_letter_and_hold_no_at() {
        for ok in ["jdoe", "j.doe", "J_doe-2"] {
            assert!(valid_jumpcloud_username(ok), "{ok}");
        }
        for bad in ["", "2jdoe", "_jdoe", "j doe", "jane@example.com", "jdoé"] {
            assert!(!valid_jumpcloud_username(bad), "{bad}");
        }
    }

    #[test]
    fn policies_read_as_the_configuration_writes_them() {
        let read = |s: &str| serde_json::from_value::<UsernamePolicy>(serde_json::json!(s)).ok();
        assert_eq!(read("local-part"), Some(UsernamePolicy::LocalPart));
        assert_eq!(read("verbatim"), Some(UsernamePolicy::Verbatim));
        assert_eq!(read("LocalPart"), None);
    }
}
