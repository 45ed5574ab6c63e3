//! The v1 system user calls: the filter operator, field violations on a rejected create, and deletes.

use serde_json::json;

use crate::jumpcloud::client::test_support::{Upstream, empty, group, reply, user};
use crate::jumpcloud::{JcError, JcUserWrite};

#[tokio::test]
async fn find_users_filters_with_the_v1_operator() {
    let up =
        Upstream::start(|_, _| reply(200, json!({"totalCount": 1, "results": [user(3)]}))).await;
    let client = up.client();
    let found = client
        .find_users("email", "user3@example.com")
        .await
        .unwrap();
    assert_eq!(found[0].username, "user3");
    let seen = &up.seen()[0];
    assert_eq!(seen.q("filter"), Some("email:$eq:user3@example.com"));
    assert_eq!(seen.q("limit"), Some("100"));
    assert!(client.find_users("a:b", "x").await.is_err());
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test]
async fn a_rejected_create_carries_field_violations() {
    let up = Upstream::start(|_, _| {
        reply(400, json!({
            "code": 400, "message": "Password validation fail", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolationsList": [{"field": "password", "description": "specialCharacter"}]}]
        }))
    })
    .await;
    let err = up
        .client()
        .create_user(&JcUserWrite::default())
        .await
        .unwrap_err();
    let JcError::Rejected {
        status,
        message,
        field_violations,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (status, message.as_str()),
        (400, "Password validation fail")
    );
    assert_eq!(
        field_violations,
        [("password".to_owned(), "specialCharacter".to_owned())]
    );
}

#[tokio::test]
async fn deletes_accept_their_documented_answers() {
    let up = Upstream::start(|s, _| match s.path.as_str() {
        "/api/systemusers/boss" if s.q("cascade_manager").is_none() => {
            reply(409, json!({"message": "user is a manager"}))
        }
        "/api/systemusers/boss" => reply(200, user(1)),
        "/api/v2/usergroups/g204" => empty(204),
        "/api/v2/usergroups/g200" => reply(200, group(1)),
        _ => reply(404, json!({"message": "Not Found"})),
    })
    .await;
    let client = up.client();
    let err = client.delete_user("boss", false).await.unwrap_err();
    assert!(matches!(&err, JcError::Conflict { message } if message == "user is a manager"));
    client.delete_user("boss", true).await.unwrap();
    client.delete_group("g204").await.unwrap();
    client.delete_group("g200").await.unwrap();
    assert!(matches!(
        client.delete_group("gone").await,
        Err(JcError::NotFound { .. })
    ));
    let seen = up.seen();
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(seen[1].q("cascade_manager"), Some("null"));
    assert_eq!(seen[0].q("cascade_manager"), None);
}
