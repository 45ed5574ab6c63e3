//! Directories (facts sheet §3.5): the kinds the emulator holds, an instance with its direct associations,
//! and their two wire shapes (the `/directories` item and the kind's own endpoint).
//!
//! Holds associations as id sets; whether an id names a real user or group is the store's rule.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The kinds of directory the emulator can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    ActiveDirectory,
    GSuite,
    Office365,
}

// === impl DirKind ===

impl DirKind {
    /// The graph `type` of this kind.
    pub fn type_name(self) -> &'static str {
        match self {
            DirKind::ActiveDirectory => "active_directory",
            DirKind::GSuite => "g_suite",
            DirKind::Office365 => "office_365",
        }
    }

    pub fn from_type(s: &str) -> Option<Self> {
        match s {
            "active_directory" => Some(DirKind::ActiveDirectory),
            "g_suite" => Some(DirKind::GSuite),
            "office_365" => Some(DirKind::Office365),
            _ => None,
        }
    }
}

/// A directory instance and its direct associations.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    pub id: String,
    pub kind: DirKind,
    pub name: String,
    pub domain: String,
    pub domain_id: String,
    pub agent_id: String,
    pub updated_at: String,
    /// Users bound directly (`targets=user`).
    pub users: BTreeSet<String>,
    /// User groups bound (`targets=user_group`); their members hold the directory through them.
    pub groups: BTreeSet<String>,
}

// === impl Directory ===

impl Directory {
    /// The item of `GET /api/v2/directories`.
    pub fn summary_json(&self) -> Value {
        let mut v = json!({ "id": self.id, "name": self.name, "type": self.kind.type_name() });
        if self.kind != DirKind::ActiveDirectory
            && let Value::Object(m) = &mut v
        {
            m.insert(
                "defaultDomain".into(),
                json!({ "id": self.domain_id, "domain": self.domain }),
            );
        }
        v
    }

    /// The object of the kind's own endpoint (`/activedirectories/{id}`, `/gsuites/{id}`, `/office365s/{id}`).
    pub fn detail_json(&self, organization: &str) -> Value {
        match self.kind {
            DirKind::ActiveDirectory => json!({
                "id": self.id,
                "domain": self.domain,
                "primaryAgent": self.agent_id,
                "primaryImportAgent": "",
                "delegationState": "DISABLED",
                "useCase": "JCASAUTHORITY",
                "groupsEnabled": true,
                "permission": "",
                "updatedAt": self.updated_at,
            }),
            DirKind::GSuite => json!({
                "id": self.id,
                "name": self.name,
                "defaultDomain": { "id": self.domain_id, "domain": self.domain },
                "groupsEnabled": true,
                "importFilter": "",
                "userLockoutAction": "suspend",
                "userPasswordExpirationAction": "suspend",
                "organizationObjectId": organization,
            }),
            DirKind::Office365 => json!({
                "id": self.id,
                "name": self.name,
                "defaultDomain": { "id": self.domain_id, "domain": self.domain },
                "groupsEnabled": true,
                "userLockoutAction": "suspend",
                "userPasswordExpirationAction": "suspend",
                "organizationObjectId": organization,
            }),
        }
    }
}
