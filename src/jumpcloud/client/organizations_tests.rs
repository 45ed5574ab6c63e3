//! The organizations list goes without `x-org-id`, and an empty org id is no org id.

use serde_json::json;

use crate::jumpcloud::JcClient;
use crate::jumpcloud::JcClientConfig;
use crate::jumpcloud::client::test_support::{KEY, Upstream, reply, v1_users};

#[tokio::test]
async fn organizations_are_listed_without_x_org_id() {
    let up = Upstream::start(|_, _| {
        reply(
            200,
            json!({"totalCount": 1, "results": [{"_id": "o1", "displayName": "Acme"}]}),
        )
    })
    .await;
    let orgs = up.client().list_organizations().await.unwrap();
    assert_eq!(orgs[0]["displayName"], "Acme");
    let seen = &up.seen()[0];
    assert_eq!(seen.path, "/api/organizations");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("x-org-id"), None);

    // An empty org id is no org id.
    let up = Upstream::start(|s, _| v1_users(s, 1)).await;
    let client = JcClient::new(JcClientConfig {
        org_id: Some(String::new()),
        ..up.config()
    })
    .unwrap();
    client.list_users().await.unwrap();
    assert_eq!(up.seen()[0].header("x-org-id"), None);
}
