//! Group membership: members listed are users only, and what each edge write reports.

use serde_json::json;

use crate::jumpcloud::client::test_support::{Upstream, empty, reply, with_header};
use crate::jumpcloud::{EdgeOp, EdgeOutcome, JcError};

#[tokio::test]
async fn members_are_users_only_and_an_unknown_group_is_not_found() {
    let up = Upstream::start(|s, _| {
        if s.path.contains("missing") {
            return reply(404, json!({"message": "Not Found"}));
        }
        let items = json!([
            {"attributes": null, "to": {"attributes": null, "id": "u1", "type": "user"}},
            {"attributes": null, "to": {"attributes": null, "id": "x1", "type": "system"}},
            {"attributes": null, "to": {"attributes": null, "id": "u2", "type": "USER"}}
        ]);
        with_header(reply(200, items), "x-total-count", 3)
    })
    .await;
    let client = up.client();
    assert_eq!(client.list_group_members("g1").await.unwrap(), ["u1", "u2"]);
    assert_eq!(up.seen()[0].path, "/api/v2/usergroups/g1/members");
    assert!(matches!(
        client.list_group_members("missing").await,
        Err(JcError::NotFound { .. })
    ));
}

#[tokio::test]
async fn member_edges_report_what_happened() {
    let up = Upstream::start(|s, i| match (s.json()["op"].as_str().unwrap(), i) {
        ("add", 0) | ("remove", 2) => empty(204),
        ("add", 1) => reply(409, json!({"message": "Already Exists"})),
        ("add", _) => reply(400, json!({"message": "Already Exists"})),
        _ => reply(404, json!({"message": "Not Found"})),
    })
    .await;
    let client = up.client();
    assert_eq!(
        client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
        EdgeOutcome::Applied
    );
    assert_eq!(
        client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
        EdgeOutcome::AlreadyInState
    );
    assert_eq!(
        client
            .group_member("g1", EdgeOp::Remove, "u1")
            .await
            .unwrap(),
        EdgeOutcome::Applied
    );
    assert_eq!(
        client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
        EdgeOutcome::AlreadyInState,
        "a 400 saying Already Exists reads the same"
    );
    assert!(matches!(
        client.group_member("g1", EdgeOp::Remove, "u9").await,
        Err(JcError::NotFound { .. })
    ));
    let first = &up.seen()[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/api/v2/usergroups/g1/members")
    );
    assert_eq!(
        first.json(),
        json!({"op": "add", "type": "user", "id": "u1"})
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("x-org-id"), Some("org-1"));
}
