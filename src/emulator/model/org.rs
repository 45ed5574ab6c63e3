//! The organisation the API key belongs to and its `GET /api/organizations` item.
//!
//! A wire shape only: it knows nothing of the users, groups or directories the organisation holds.

use serde_json::{Value, json};

/// The organisation the API key belongs to.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created: String,
}

// === impl Organization ===

impl Organization {
    pub fn to_json(&self) -> Value {
        json!({
            "_id": self.id,
            "id": self.id,
            "displayName": self.name,
            "logoUrl": "",
            "created": self.created,
            "settings": {
                "newSystemUserStateDefaults": {
                    "manualEntry": "ACTIVATED",
                    "csvImport": "ACTIVATED",
                    "applicationImport": "ACTIVATED"
                }
            }
        })
    }
}
