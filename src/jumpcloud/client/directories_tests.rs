//! Directory associations: each kind's collection, the targets asked for, and kinds that have none.

use serde_json::json;

use crate::jumpcloud::client::test_support::{
    Upstream, empty, protocol_message, reply, with_header,
};
use crate::jumpcloud::{AssocTarget, EdgeOp, EdgeOutcome, JcDirectory, JcDirectoryKind};

#[tokio::test]
async fn directory_associations_use_the_kinds_collection() {
    let up = Upstream::start(|s, _| {
        if s.method == "POST" {
            return empty(204);
        }
        let items = json!([
            {"to": {"id": "g1", "type": "user_group"}},
            {"to": {"id": "g2", "type": "user_group"}}
        ]);
        with_header(reply(200, items), "x-total-count", 2)
    })
    .await;
    let client = up.client();
    let dir = |id: &str, kind| JcDirectory {
        id: id.into(),
        name: None,
        kind,
        default_domain: None,
    };
    let gsuite = dir("d2", JcDirectoryKind::GSuite);
    assert_eq!(
        client
            .list_directory_associations(&gsuite, AssocTarget::UserGroup)
            .await
            .unwrap(),
        ["g1", "g2"]
    );
    let ad = dir("d1", JcDirectoryKind::ActiveDirectory);
    assert_eq!(
        client
            .directory_association(&ad, EdgeOp::Add, AssocTarget::User, "u1")
            .await
            .unwrap(),
        EdgeOutcome::Applied
    );
    // Edges of another type than the one asked for are dropped.
    let m365 = dir("d3", JcDirectoryKind::Office365);
    assert!(
        client
            .list_directory_associations(&m365, AssocTarget::User)
            .await
            .unwrap()
            .is_empty()
    );
    let ldap = dir("d4", JcDirectoryKind::Other("ldap_server".into()));
    protocol_message(
        client
            .list_directory_associations(&ldap, AssocTarget::User)
            .await,
    );

    let seen = up.seen();
    assert_eq!(seen.len(), 3, "no call for a kind without associations");
    assert_eq!(seen[0].path, "/api/v2/gsuites/d2/associations");
    assert_eq!(seen[0].q("targets"), Some("user_group"));
    assert_eq!(seen[1].path, "/api/v2/activedirectories/d1/associations");
    assert_eq!(
        seen[1].json(),
        json!({"op": "add", "type": "user", "id": "u1"})
    );
    assert_eq!(seen[2].path, "/api/v2/office365s/d3/associations");
}
