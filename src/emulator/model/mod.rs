//! The emulated objects and their wire shapes: system users (facts sheet §2.2), user groups (§3.2),
//! directories (§3.5), the organisation, graph edges (§3.3/§3.4), and the rules for reading request bodies
//! into them (§2.3, §2.5).
//!
//! Owns field-level validation; cross-object rules (uniqueness, managers, membership) belong to `store`.
//!
//! # Layout
//! - `ids`: ObjectId-like ids and the API's timestamp format.
//! - `org`: the organisation. `users`: the user, its nested records, its wire shape and fast fields.
//! - `user_body`: reading a create/update body into a user. `fields`: the readers of single body members.
//! - `rules`: the username rule, the email shape and the password policy.
//! - `groups`: user groups and their body. `directories`: directory kinds and instances.
//! - `graph`: the JSON shapes of graph edges.

mod directories;
mod fields;
mod graph;
mod groups;
mod ids;
mod org;
mod rules;
mod user_body;
mod users;

pub use self::directories::{DirKind, Directory};
pub use self::graph::{edge, with_paths};
pub use self::groups::{Group, GroupFields};
pub use self::ids::{IdGen, is_object_id, iso_millis};
pub use self::org::Organization;
pub use self::rules::{email_ok, password_violations, username_problem};
pub use self::user_body::Applied;
pub use self::users::{Address, Attribute, Mfa, PhoneNumber, User, UserState};

#[cfg(test)]
mod tests;
