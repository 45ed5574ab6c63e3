//! Paging: v1 and v2 lists read whole, and every way a list can disagree with its announced total.

use serde_json::{Value, json};

use crate::jumpcloud::client::test_support::{
    KEY, Seen, Upstream, group, protocol_message, reply, user, v1_users, v2_page, with_header,
};
use crate::jumpcloud::{ClientStats, JcDirectoryKind};

#[tokio::test]
async fn users_are_listed_in_pages_of_100_with_every_header() {
    let up = Upstream::start(|s, _| v1_users(s, 250)).await;
    let client = up.client();
    let users = client.list_users().await.unwrap();
    assert_eq!(users.len(), 250);
    assert_eq!(users[0].id, format!("{:024x}", 0));
    assert_eq!(users[249].username, "user249");

    let seen = up.seen();
    let skips: Vec<_> = seen.iter().map(Seen::skip).collect();
    assert_eq!(skips, [0, 100, 200]);
    for s in &seen {
        assert_eq!(
            (s.method.as_str(), s.path.as_str()),
            ("GET", "/api/systemusers")
        );
        assert_eq!(s.q("limit"), Some("100"));
        assert_eq!(s.q("sort"), Some("_id"));
        assert_eq!(s.header("x-api-key"), Some(KEY));
        assert_eq!(s.header("x-org-id"), Some("org-1"));
        assert_eq!(s.header("accept"), Some("application/json"));
        assert!(
            s.header("user-agent")
                .unwrap()
                .starts_with("jumpcloud-scim/")
        );
        assert_eq!(s.header("content-type"), None, "no body, no content type");
    }
    assert_eq!(
        client.stats(),
        ClientStats {
            calls: 3,
            retries: 0,
            ..ClientStats::default()
        }
    );
}

#[tokio::test]
async fn an_empty_list_takes_one_call_and_a_full_last_page_no_extra_one() {
    let up = Upstream::start(|s, _| v1_users(s, 0)).await;
    assert!(up.client().list_users().await.unwrap().is_empty());
    assert_eq!(up.seen().len(), 1);

    let up = Upstream::start(|s, _| v1_users(s, 200)).await;
    assert_eq!(up.client().list_users().await.unwrap().len(), 200);
    assert_eq!(up.seen().len(), 2);
}

#[tokio::test]
async fn a_list_that_disagrees_with_its_total_is_a_protocol_error() {
    // The second page is short of what totalCount promised.
    let up = Upstream::start(|s, _| {
        let mut c = v1_users(s, 150);
        if s.skip() == 100 {
            let results: Vec<Value> = (100..130).map(user).collect();
            c = reply(200, json!({"totalCount": 150, "results": results}));
        }
        c
    })
    .await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("expected 50 of 150"), "{msg}");

    // The total moves between pages: a user was created or deleted mid-listing.
    let up = Upstream::start(|s, i| v1_users(s, 150 + i)).await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("total changed from 150 to 151"), "{msg}");

    // The same id on two pages: the list shifted under `skip`.
    let up = Upstream::start(|s, _| {
        let start = if s.skip() == 0 { 0 } else { 99 };
        let results: Vec<Value> = (start..start + 100).map(user).collect();
        reply(200, json!({"totalCount": 200, "results": results}))
    })
    .await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("appears twice"), "{msg}");

    // A body that is not the envelope.
    let up = Upstream::start(|_, _| reply(200, json!([]))).await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("did not parse"), "{msg}");
}

#[tokio::test]
async fn groups_page_by_x_total_count() {
    let groups: Vec<Value> = (0..120).map(group).collect();
    let all = groups.clone();
    let up = Upstream::start(move |s, _| v2_page(s, &all, Some(120))).await;
    let got = up.client().list_groups().await.unwrap();
    assert_eq!(got.len(), 120);
    assert_eq!(got[119].name, "Group 119");
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/api/v2/usergroups");
    assert_eq!(seen[1].q("sort"), Some("id"));
    assert_eq!(seen[1].q("limit"), Some("100"));
    assert_eq!(seen[1].q("skip"), Some("100"));
    assert_eq!(seen[1].header("x-org-id"), Some("org-1"));

    // The header says more than the pages hold.
    let all = groups.clone();
    let up = Upstream::start(move |s, _| v2_page(s, &all[..110], Some(120))).await;
    let msg = protocol_message(up.client().list_groups().await);
    assert!(msg.contains("expected 20 of 120"), "{msg}");

    // A header that is not a number.
    let all = groups;
    let up =
        Upstream::start(move |s, _| with_header(v2_page(s, &all, None), "x-total-count", "lots"))
            .await;
    let msg = protocol_message(up.client().list_groups().await);
    assert!(msg.contains("not a count"), "{msg}");
}

#[tokio::test]
async fn a_v2_list_without_a_total_runs_to_a_short_page() {
    let dirs: Vec<Value> = (0..103)
        .map(|i| json!({"id": format!("d{i}"), "name": "x", "type": "ldap_server"}))
        .collect();
    let up = Upstream::start(move |s, _| v2_page(s, &dirs, None)).await;
    let got = up.client().list_directories().await.unwrap();
    assert_eq!(got.len(), 103);
    assert_eq!(got[0].kind, JcDirectoryKind::Other("ldap_server".into()));
    assert_eq!(up.seen().len(), 2);
    assert_eq!(up.seen()[0].path, "/api/v2/directories");
}
