//! JumpCloud user groups, and directories listed as groups → SCIM Group.

use serde_json::{Map, Value, json};

use super::{MappingOptions, directory_type_name, present, urn};
use crate::jumpcloud::{JcDirectory, JcGroup};

/// One member as shown in `Group.members`: a user id (its `$ref` is derived from it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupMember {
    pub id: String,
}

/// The externalId kept in the JumpCloud group's free-form `attributes`.
pub fn group_external_id<'a>(group: &'a JcGroup, opts: &MappingOptions) -> Option<&'a str> {
    group
        .attributes
        .as_ref()
        .and_then(|a| a.get(&opts.external_id_attribute))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn members_json(members: &[GroupMember], opts: &MappingOptions) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| {
                json!({
                    "value": m.id,
                    "$ref": format!("{}/Users/{}", opts.scim_base, m.id),
                })
            })
            .collect(),
    )
}

/// Map a JumpCloud user group and its members to a SCIM Group without `meta`.
pub fn group_to_scim(group: &JcGroup, members: &[GroupMember], opts: &MappingOptions) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([urn::GROUP, urn::JC_GROUP]));
    out.insert("id".into(), Value::from(group.id.as_str()));
    if let Some(ext) = group_external_id(group, opts) {
        out.insert("externalId".into(), Value::from(ext));
    }
    out.insert("displayName".into(), Value::from(group.name.as_str()));
    out.insert("members".into(), members_json(members, opts));
    let mut ext = Map::new();
    ext.insert("groupType".into(), Value::from("user_group"));
    if let Some(d) = present(&group.description) {
        ext.insert("description".into(), Value::from(d));
    }
    out.insert(urn::JC_GROUP.into(), Value::Object(ext));
    Value::Object(out)
}

/// The name a directory is shown by: its name, else its domain, else its id.
pub fn directory_display(dir: &JcDirectory) -> String {
    present(&dir.name)
        .or(present(&dir.default_domain))
        .unwrap_or(dir.id.as_str())
        .to_string()
}

/// Map a directory (AD, Google Workspace, M365) and its holders to a SCIM Group without `meta`, or
/// nothing for directory kinds users cannot hold.
pub fn directory_to_scim(
    dir: &JcDirectory,
    holders: &[GroupMember],
    opts: &MappingOptions,
) -> Option<Value> {
    let kind = directory_type_name(&dir.kind)?;
    Some(json!({
        "schemas": [urn::GROUP, urn::JC_GROUP],
        "id": dir.id,
        "displayName": directory_display(dir),
        "members": members_json(holders, opts),
        urn::JC_GROUP: {"groupType": kind},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jumpcloud::JcDirectoryKind;

    #[test]
    fn group_maps_name_members_external_id_and_description() {
        let opts = MappingOptions::default();
        let mut attrs = serde_json::Map::new();
        attrs.insert("scimExternalId".into(), json!("ext-9"));
        attrs.insert("sudo".into(), json!({"enabled": false}));
        let g = JcGroup {
            id: "g1".into(),
            name: "Engineering".into(),
            description: Some("builders".into()),
            attributes: Some(attrs),
            ..Default::default()
        };
        let members = vec![GroupMember { id: "u1".into() }];
        let v = group_to_scim(&g, &members, &opts);
        assert_eq!(v["displayName"], "Engineering");
        assert_eq!(v["externalId"], "ext-9");
        assert_eq!(
            v["members"],
            json!([{"value": "u1", "$ref": "http://localhost/scim/v2/Users/u1"}])
        );
        assert_eq!(
            v[urn::JC_GROUP],
            json!({"groupType": "user_group", "description": "builders"})
        );
    }

    #[test]
    fn group_without_external_id_or_members() {
        let g = JcGroup {
            id: "g2".into(),
            name: "Empty".into(),
            ..Default::default()
        };
        let v = group_to_scim(&g, &[], &MappingOptions::default());
        assert!(v.get("externalId").is_none());
        assert_eq!(v["members"], json!([]));
    }

    #[test]
    fn directories_become_groups_by_kind() {
        let opts = MappingOptions::default();
        for (kind, want) in [
            (JcDirectoryKind::ActiveDirectory, Some("active_directory")),
            (JcDirectoryKind::GSuite, Some("g_suite")),
            (JcDirectoryKind::Office365, Some("office_365")),
            (JcDirectoryKind::Other("ldap_server".into()), None),
        ] {
            let d = JcDirectory {
                id: "d1".into(),
                name: None,
                kind,
                default_domain: Some("corp.example.com".into()),
            };
            let v = directory_to_scim(&d, &[], &opts);
            assert_eq!(
                v.as_ref().map(|v| v[urn::JC_GROUP]["groupType"].clone()),
                want.map(Value::from)
            );
            if let Some(v) = v {
                assert_eq!(v["displayName"], "corp.example.com");
            }
        }
    }
}
