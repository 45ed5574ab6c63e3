//! Paging: v1 and v2 lists read whole, and every way a list can disagree with its announced total.

use serde_json::{Value, json};

use crate::jumpcloud::client::test_support::{
    Canned, KEY, Seen, Upstream, group, protocol_message, reply, user, v1_users, v2_page,
    with_header,
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
    assert_eq!(skips, [0, 97, 194], "pages overlap by three");
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
async fn an_empty_list_takes_one_call_and_a_full_page_reaching_the_total_no_extra_one() {
    let up = Upstream::start(|s, _| v1_users(s, 0)).await;
    assert!(up.client().list_users().await.unwrap().is_empty());
    assert_eq!(up.seen().len(), 1);

    let up = Upstream::start(|s, _| v1_users(s, 100)).await;
    assert_eq!(up.client().list_users().await.unwrap().len(), 100);
    assert_eq!(up.seen().len(), 1);

    // 0..100, 97..197, 194..200.
    let up = Upstream::start(|s, _| v1_users(s, 200)).await;
    assert_eq!(up.client().list_users().await.unwrap().len(), 200);
    assert_eq!(up.seen().len(), 3);
}

/// A v1 `/api/systemusers` that changes with every call `i`: the first `deleted(i)` users are gone, and one
/// user per call was created (ids after every seeded one, as ObjectIds are).
fn moving_users(s: &Seen, i: usize, n: usize, deleted: impl Fn(usize) -> usize) -> Canned {
    let limit: usize = s.q("limit").map_or(10, |v| v.parse().unwrap());
    let live: Vec<usize> = (deleted(i).min(n)..n).chain(10_000..10_000 + i).collect();
    let results: Vec<Value> = live
        .iter()
        .skip(s.skip())
        .take(limit)
        .map(|&k| user(k))
        .collect();
    reply(200, json!({"totalCount": live.len(), "results": results}))
}

fn ids_of(users: &[crate::jumpcloud::JcUser]) -> Vec<usize> {
    users
        .iter()
        .map(|u| usize::from_str_radix(&u.id, 16).unwrap())
        .collect()
}

#[tokio::test]
async fn users_deleted_ahead_of_the_walk_do_not_make_it_skip_the_ones_after_them() {
    // Two users deleted from the head between pages: absorbed by the overlap, no page read twice.
    let up = Upstream::start(|s, i| moving_users(s, i, 1_000, |i| 2 * i)).await;
    let got = ids_of(&up.client().list_users().await.unwrap());
    let skips: Vec<usize> = up.seen().iter().map(Seen::skip).collect();
    assert!(
        skips.windows(2).all(|w| w[1] > w[0]),
        "no page read again: {skips:?}"
    );
    let calls = skips.len();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "each user once");
    // Every user alive through the whole walk is there (a reader stepping by whole pages would miss two
    // per page), and so is every user created before the last page was read.
    for k in 2 * calls..1_000 {
        assert!(got.contains(&k), "user {k} missed");
    }
    assert!(got.contains(&(10_000 + calls - 2)));

    // Seven deleted between pages: more than the overlap, so pages are read again from further back.
    let up = Upstream::start(|s, i| moving_users(s, i, 1_000, |i| 7 * i)).await;
    let got = ids_of(&up.client().list_users().await.unwrap());
    let skips: Vec<usize> = up.seen().iter().map(Seen::skip).collect();
    assert!(
        skips.windows(2).any(|w| w[1] < w[0]),
        "a page read again from further back: {skips:?}"
    );
    let calls = up.seen().len();
    for k in 7 * calls..1_000 {
        assert!(got.contains(&k), "user {k} missed ({skips:?})");
    }
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "each user once");
}

#[tokio::test]
async fn a_list_that_moves_faster_than_it_can_be_read_is_a_protocol_error_not_an_endless_walk() {
    // Every page after the head holds only ids never seen before: no anchor is ever found.
    let up = Upstream::start(|s, i| {
        let results: Vec<Value> = (0..100)
            .map(|k| {
                user(if s.skip() == 0 {
                    k
                } else {
                    1_000 * (i + 1) + k
                })
            })
            .collect();
        reply(200, json!({"totalCount": 100_000, "results": results}))
    })
    .await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(
        msg.contains("moved by more than the reader can follow"),
        "{msg}"
    );
    assert!(up.seen().len() < 40, "{} calls", up.seen().len());
}

#[tokio::test]
async fn a_list_that_disagrees_with_its_total_is_a_protocol_error() {
    // The second page is short of what totalCount promised.
    let up = Upstream::start(|s, _| {
        let mut c = v1_users(s, 150);
        if s.skip() != 0 {
            let results: Vec<Value> = (s.skip()..s.skip() + 30).map(user).collect();
            c = reply(200, json!({"totalCount": 150, "results": results}));
        }
        c
    })
    .await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(
        msg.contains(
            "page at skip=97 has 30 items, fewer than the limit 100, though the list holds 150"
        ),
        "{msg}"
    );

    // The same id twice on one page.
    let up = Upstream::start(|_, _| {
        let results: Vec<Value> = (0..10).map(|k| user(k % 9)).collect();
        reply(200, json!({"totalCount": 10, "results": results}))
    })
    .await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("appears twice on the page at skip=0"), "{msg}");

    // A body that is not the envelope.
    let up = Upstream::start(|_, _| reply(200, json!([]))).await;
    let msg = protocol_message(up.client().list_users().await);
    assert!(msg.contains("did not parse"), "{msg}");
}

#[tokio::test]
async fn a_total_that_moves_between_pages_is_a_list_being_changed_and_read_whole() {
    // A user created with every call: 0..100, then 97..151 (short: the end).
    let up = Upstream::start(|s, i| v1_users(s, 150 + i)).await;
    let got = up.client().list_users().await.unwrap();
    assert_eq!(got.len(), 151);
    assert_eq!(up.seen().len(), 2);
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
    assert_eq!(seen[1].q("skip"), Some("97"));
    assert_eq!(seen[1].header("x-org-id"), Some("org-1"));

    // The header says more than the pages hold.
    let all = groups.clone();
    let up = Upstream::start(move |s, _| v2_page(s, &all[..110], Some(120))).await;
    let msg = protocol_message(up.client().list_groups().await);
    assert!(
        msg.contains("has 13 items, fewer than the limit 100, though the list holds 120"),
        "{msg}"
    );

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
