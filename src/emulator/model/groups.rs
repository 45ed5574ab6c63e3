//! User groups (facts sheet §3.2): the group, its writable fields, reading a `UserGroupPost`/`UserGroupPut`
//! body into them, and the `UserGroup` wire shape.
//!
//! Holds members as an id set; whether a member exists, name uniqueness and what a delete takes with it
//! belong to `store`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::fields::{MAX_TEXT, flag, text};
use crate::emulator::error::ApiError;

/// `membershipMethod` values the spec lists.
const MEMBERSHIP_METHODS: [&str; 4] = [
    "NOTSET",
    "STATIC",
    "DYNAMIC_REVIEW_REQUIRED",
    "DYNAMIC_AUTOMATED",
];

/// A user group. `members` holds direct members (users only, as the member-operation enum allows).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub organization: String,
    pub fields: GroupFields,
    pub members: BTreeSet<String>,
}

/// The writable part of a group: what `POST` sets and `PUT` replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFields {
    pub name: String,
    pub description: String,
    pub email: String,
    /// Free-form, kept as sent (an object or null).
    pub attributes: Option<Value>,
    pub membership_method: String,
    pub member_query: Option<Value>,
    pub member_query_exemptions: Vec<Value>,
    pub member_suggestions_notify: bool,
}

// === impl GroupFields ===

impl GroupFields {
    /// A group called `name` with every other field at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            email: String::new(),
            attributes: None,
            membership_method: "STATIC".into(),
            member_query: None,
            member_query_exemptions: Vec::new(),
            member_suggestions_notify: false,
        }
    }

    /// Reads a `UserGroupPost`/`UserGroupPut` body: `name` required, everything omitted takes its default
    /// (which is what makes `PUT` a full replace).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let bad = |m: &str| ApiError::BadRequest(m.to_owned());
        let name = match body.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(bad("name is required"));
            }
            Some(_) => return Err(bad("name must be a string")),
        };
        if name.chars().count() > MAX_TEXT {
            return Err(bad("name is too long"));
        }
        let mut g = GroupFields::named(name);
        for (k, v) in body {
            match k.as_str() {
                "description" => {
                    g.description = text(k, v).map_err(|_| bad("description must be a string"))?
                }
                "email" => g.email = text(k, v).map_err(|_| bad("email must be a string"))?,
                "attributes" => {
                    g.attributes = match v {
                        Value::Null => None,
                        Value::Object(_) => Some(v.clone()),
                        _ => return Err(bad("attributes must be an object or null")),
                    }
                }
                "membershipMethod" => match v {
                    Value::Null => {}
                    Value::String(s) if MEMBERSHIP_METHODS.contains(&s.as_str()) => {
                        g.membership_method = s.clone()
                    }
                    _ => {
                        return Err(bad(
                            "membershipMethod must be NOTSET, STATIC, DYNAMIC_REVIEW_REQUIRED or DYNAMIC_AUTOMATED",
                        ));
                    }
                },
                "memberQuery" => {
                    g.member_query = match v {
                        Value::Null => None,
                        Value::Object(_) => Some(v.clone()),
                        _ => return Err(bad("memberQuery must be an object")),
                    }
                }
                "memberQueryExemptions" => {
                    g.member_query_exemptions = match v {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items.clone(),
                        _ => return Err(bad("memberQueryExemptions must be an array")),
                    }
                }
                "memberSuggestionsNotify" => {
                    g.member_suggestions_notify =
                        flag(k, v).map_err(|_| bad("memberSuggestionsNotify must be a boolean"))?
                }
                _ => {}
            }
        }
        Ok(g)
    }
}

// === impl Group ===

impl Group {
    /// The `UserGroup` wire shape.
    pub fn to_json(&self) -> Value {
        let f = &self.fields;
        let mut v = json!({
            "id": self.id,
            "name": f.name,
            "type": "user_group",
            "description": f.description,
            "email": f.email,
            "attributes": f.attributes,
            "membershipMethod": f.membership_method,
            "memberQueryExemptions": f.member_query_exemptions,
            "memberQueryErrorFlags": [],
            "memberSuggestionsNotify": f.member_suggestions_notify,
            "suggestionCounts": { "add": 0, "remove": 0, "total": 0 },
            "organizationObjectId": self.organization,
        });
        if let (Some(q), Value::Object(m)) = (&f.member_query, &mut v) {
            m.insert("memberQuery".into(), q.clone());
        }
        v
    }
}
