//! Replicas on Redis, end to end: a real `redis-server` on a free port, two or three `jumpcloud-scim serve`
//! processes sharing it, and the emulator, all on 127.0.0.1. Without `redis-server` these tests say loudly
//! that they were skipped and how to install it (and fail under `JCSCIM_REQUIRE_REAL_PARTS=1`, as in CI).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::redis::{
    Redis, Replica, ReplicaSettings, TOKEN, eventually, prefix, redis_server, version_of,
};
use crate::support::small_emulator;

const QUICK: ReplicaSettings = ReplicaSettings {
    lease_s: 3,
    refresh_s: 3600,
    insights: false,
};
/// A refresh every second (and a short lease): versions keep coming.
const BUSY: ReplicaSettings = ReplicaSettings {
    refresh_s: 1,
    ..QUICK
};

/// The emulator, Redis and `n` replicas, each ready (serving a version).
async fn cluster(
    test: &str,
    users: usize,
    n: usize,
    settings: ReplicaSettings,
) -> Option<(
    jumpcloud_scim::emulator::RunningEmulator,
    Redis,
    Vec<Replica>,
)> {
    let bin = redis_server(test)?;
    let redis = Redis::start(bin).await;
    let emu = jumpcloud_scim::emulator::spawn(small_emulator(users, 2))
        .await
        .unwrap();
    let prefix = prefix(test);
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(Replica::start(&emu.base_url(), &redis, &prefix, settings).await);
    }
    for r in &replicas {
        let ready = eventually(Duration::from_secs(60), || async {
            r.readyz().await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        assert!(ready, "a replica never became ready");
    }
    Some((emu, redis, replicas))
}

/// The index of the one leader, waiting (bounded) until exactly one replica says it leads.
async fn leader(replicas: &[Replica]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut leaders = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.is_leader().await {
                leaders.push(i);
            }
        }
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never exactly one leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until every replica serves the same version, at least `at_least`; that version.
async fn converged(replicas: &[&Replica], at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = HashSet::new();
        for r in replicas {
            seen.insert(r.version().await);
        }
        let v = *seen.iter().max().unwrap();
        if seen.len() == 1 && v >= at_least {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replicas never served one version >= {at_least}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The emulator's request counts (`/__emulator/stats`).
async fn emulator_stats(emu: &jumpcloud_scim::emulator::RunningEmulator) -> Value {
    reqwest::get(format!("{}/__emulator/stats", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stats_total(emu: &jumpcloud_scim::emulator::RunningEmulator) -> u64 {
    emulator_stats(emu).await["total"].as_u64().unwrap()
}

#[tokio::test]
async fn three_replicas_make_one_refresher_and_followers_never_call_jumpcloud() {
    let settings = BUSY;
    let Some((emu, _redis, replicas)) = cluster("one-refresher", 30, 3, settings).await else {
        return;
    };
    let lead = leader(&replicas).await;
    // Several refresh intervals pass.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        leader(&replicas).await,
        lead,
        "the lease moved without cause"
    );
    for (i, r) in replicas.iter().enumerate() {
        let feed = r.readyz().await.unwrap().1["insights"]["state"].clone();
        // The feed is off here: every replica says so (the feed's test below has a follower's view of it).
        assert_eq!(feed, "off", "replica {i}'s /readyz");
        if i != lead {
            assert_eq!(r.upstream_calls().await, 0, "follower {i} called JumpCloud");
        }
    }
    // Every call the emulator counted came from the leader: compare in a quiet moment between refreshes.
    let agreed = eventually(Duration::from_secs(20), || async {
        let before = stats_total(&emu).await;
        let mut ours = 0;
        for r in &replicas {
            ours += r.upstream_calls().await;
        }
        let after = stats_total(&emu).await;
        before > 0 && before == after && ours == after
    })
    .await;
    assert!(agreed, "the emulator counted calls no replica made");
    let leader_calls = replicas[lead].upstream_calls().await;
    assert!(leader_calls > 0);
    converged(&replicas.iter().collect::<Vec<_>>(), 1).await;
}

#[tokio::test]
async fn a_killed_leader_is_replaced_within_a_lease_and_a_paused_one_is_fenced_off() {
    let settings = BUSY;
    let Some((_emu, _redis, mut replicas)) = cluster("failover", 12, 3, settings).await else {
        return;
    };
    let lead = leader(&replicas).await;
    let killed_at = tokio::time::Instant::now();
    replicas[lead].kill().await;
    let dead = replicas.remove(lead);
    let took_over = eventually(Duration::from_secs(15), || async {
        let mut n = 0;
        for r in &replicas {
            n += usize::from(r.is_leader().await);
        }
        n == 1
    })
    .await;
    let took = killed_at.elapsed();
    assert!(took_over, "nobody took over");
    // Within one lease of its last renewal, plus a follower's look (a tenth of it) and scheduling slack.
    assert!(
        took < Duration::from_secs(settings.lease_s * 2),
        "take-over took {took:?}"
    );
    drop(dead);
    // Versions keep coming from the new leader, and both replicas serve them.
    let v = converged(&replicas.iter().collect::<Vec<_>>(), 1).await;
    converged(&replicas.iter().collect::<Vec<_>>(), v + 1).await;

    // Fencing: freeze the new leader past its lease; the other takes over; the frozen one, resumed,
    // publishes nothing over the newer leader and follows it.
    let lead = leader(&replicas).await;
    let other = 1 - lead;
    replicas[lead].signal("STOP").await;
    let took_over = eventually(Duration::from_secs(15), || async {
        replicas[other].is_leader().await
    })
    .await;
    assert!(took_over, "nobody took over from the frozen leader");
    replicas[lead].signal("CONT").await;
    let stepped_down = eventually(Duration::from_secs(10), || async {
        replicas[lead].store().await["role"] == "follower"
    })
    .await;
    assert!(stepped_down, "the resumed old leader still says it leads");
    let v = converged(&replicas.iter().collect::<Vec<_>>(), 1).await;
    converged(&replicas.iter().collect::<Vec<_>>(), v + 1).await;
    let store = replicas[other].store().await;
    assert_eq!(store["role"], "leader");
}

/// One page of `/Users` on `r`: ids, total and version.
async fn page(r: &Replica, start: usize, count: usize) -> (Vec<String>, u64, u64) {
    let resp = r
        .get(&format!("/Users?startIndex={start}&count={count}"))
        .await;
    assert_eq!(resp.status(), 200);
    let v = version_of(&resp);
    let body: Value = resp.json().await.unwrap();
    let ids = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["totalResults"].as_u64().unwrap(), v)
}

#[tokio::test]
async fn a_walk_alternating_replicas_sees_every_user_once_while_a_refresh_publishes() {
    let Some((emu, _redis, replicas)) = cluster("walk", 45, 2, QUICK).await else {
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let start_version = converged(&[a, b], 1).await;
    let (first, total, pinned) = page(a, 1, 10).await;
    assert_eq!(first.len(), 10);
    // Mid-walk: the directory changes upstream (one user gone, two new), and a refresh publishes it.
    let http = reqwest::Client::new();
    let jc = |m: reqwest::Method, p: &str| {
        http.request(m, format!("{}{p}", emu.base_url()))
            .header("x-api-key", "demo-key")
    };
    let gone = first[3].clone();
    let r = jc(
        reqwest::Method::DELETE,
        &format!("/api/systemusers/{gone}?cascade_manager=null"),
    )
    .send()
    .await
    .unwrap();
    assert!(r.status().is_success());
    for i in 0..2 {
        let r = jc(reqwest::Method::POST, "/api/systemusers")
            .json(&json!({"username": format!("late{i}"), "email": format!("late{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let r = b
        .http
        .post(format!("{}/admin/refresh", b.served.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let newer = converged(&[a, b], start_version + 1).await;
    assert!(newer > pinned);
    // The rest of the walk, page by page on alternating replicas.
    let mut seen: Vec<String> = first;
    let mut start = 11;
    let mut turn = 1;
    while (start as u64) <= total {
        let r = if turn % 2 == 1 { b } else { a };
        let (ids, t, v) = page(r, start, 10).await;
        assert_eq!(t, total, "the walk's total changed on page at {start}");
        assert_eq!(
            v, pinned,
            "page at {start} was not read from the walk's version"
        );
        start += ids.len();
        seen.extend(ids);
        turn += 1;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a user was seen twice");
    assert_eq!(seen.len() as u64, total, "a user was missed");
    assert!(
        seen.contains(&gone),
        "the pinned walk still holds the deleted user"
    );
    // A new walk sees the new directory.
    let (_, now_total, v) = page(a, 1, 10).await;
    assert_eq!(now_total, total + 1);
    assert!(v > pinned);
}

#[tokio::test]
async fn concurrent_writes_to_one_user_from_two_replicas_serialise_and_none_is_lost() {
    let Some((emu, _redis, replicas)) = cluster("writes", 6, 2, QUICK).await else {
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    converged(&[a, b], 1).await;
    let list: Value = a.get("/Users?count=1").await.json().await.unwrap();
    let id = list["Resources"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let set = |attr: &str, value: String| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": attr, "value": value}]})
    };
    for i in 0..8 {
        let (ta, fb) = (
            set("title", format!("title-{i}")),
            set("name.familyName", format!("family-{i}")),
        );
        let (ra, rb) = tokio::join!(a.patch(&path, &ta), b.patch(&path, &fb));
        assert_eq!(ra.status(), 200, "replica A's write");
        assert_eq!(rb.status(), 200, "replica B's write");
        // Read-your-writes on the other replica: each writer's next read, wherever it lands, sees its write.
        let on_b: Value = b.get(&path).await.json().await.unwrap();
        let on_a: Value = a.get(&path).await.json().await.unwrap();
        for u in [&on_a, &on_b] {
            assert_eq!(u["title"], format!("title-{i}"), "a write was lost: {u}");
            assert_eq!(
                u["name"]["familyName"],
                format!("family-{i}"),
                "a write was lost: {u}"
            );
        }
    }
    // Serialised, not merely merged: two writes made against the same version (If-Match its ETag) from two
    // replicas at once: one lands, the other finds the version moved on (412), whichever replica it reached.
    for i in 0..6 {
        let etag = a.get(&path).await.headers()["etag"]
            .to_str()
            .unwrap()
            .to_owned();
        let (ta, tb) = (
            set("title", format!("a-{i}")),
            set("title", format!("b-{i}")),
        );
        let (ra, rb) = tokio::join!(a.patch_if(&path, &ta, &etag), b.patch_if(&path, &tb, &etag));
        let mut codes = [ra.status().as_u16(), rb.status().as_u16()];
        codes.sort_unstable();
        assert_eq!(
            codes,
            [200, 412],
            "round {i}: both or neither of two racing writes landed"
        );
        let winner = if ra.status() == 200 { "a" } else { "b" };
        for r in [a, b] {
            let u: Value = r.get(&path).await.json().await.unwrap();
            assert_eq!(u["title"], format!("{winner}-{i}"));
        }
    }
    let last: Value = a.get(&path).await.json().await.unwrap();
    let last_title = last["title"].as_str().unwrap().to_owned();
    // JumpCloud has both changes too.
    let upstream: Value = reqwest::Client::new()
        .get(format!("{}/api/systemusers/{id}", emu.base_url()))
        .header("x-api-key", "demo-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upstream["jobTitle"], last_title.as_str());
    assert_eq!(upstream["lastname"], "family-7");
}

#[tokio::test]
async fn redis_down_reads_go_on_writes_answer_503_and_redis_back_the_replicas_catch_up() {
    let Some((_emu, mut redis, replicas)) = cluster("redis-down", 6, 2, QUICK).await else {
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let before = converged(&[a, b], 1).await;
    let list: Value = a.get("/Users?count=1").await.json().await.unwrap();
    let id = list["Resources"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let title = |t: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "title", "value": t}]})
    };
    redis.stop().await;
    for r in [a, b] {
        for p in ["/Users", &path, "/Groups?startIndex=2&count=1"] {
            assert_eq!(
                r.get(p).await.status(),
                200,
                "a read of {p} failed with Redis down"
            );
        }
        let w = r.patch(&path, &title("while-down")).await;
        assert_eq!(w.status(), 503);
        assert!(w.headers().contains_key("retry-after"));
        let body: Value = w.json().await.unwrap();
        assert_eq!(body["status"], "503");
        assert!(body["schemas"][0].as_str().unwrap().contains("Error"));
    }
    let said = eventually(Duration::from_secs(10), || async {
        a.store().await["up"] == false && b.store().await["up"] == false
    })
    .await;
    assert!(said, "/readyz never said Redis is down");
    let (status, _) = a.readyz().await.unwrap();
    assert_eq!(
        status, 200,
        "a replica with a snapshot stays ready while Redis is down"
    );
    let metrics = a.metrics().await;
    assert!(metrics.contains("jcscim_store_up 0"), "{metrics}");

    // Redis back (empty: it persisted nothing): a leader is elected again, writes work, and both replicas
    // serve the write without a restart.
    redis.resume().await;
    let wrote = eventually(Duration::from_secs(30), || async {
        a.patch(&path, &title("after")).await.status() == 200
    })
    .await;
    assert!(wrote, "writes never resumed after Redis came back");
    let caught_up = eventually(Duration::from_secs(20), || async {
        let ua: Value = a.get(&path).await.json().await.unwrap();
        let ub: Value = b.get(&path).await.json().await.unwrap();
        ua["title"] == "after" && ub["title"] == "after"
    })
    .await;
    assert!(caught_up, "a replica never caught up after Redis came back");
    assert!(a.store().await["up"] == true && b.store().await["up"] == true);
    let after = converged(&[a, b], 1).await;
    assert!(after != before);
}

/// The integer in a RESP reply to GET (`$n\r\nVALUE\r\n`), if any.
fn resp_int(reply: &str) -> Option<u64> {
    reply.lines().nth(1)?.trim().parse().ok()
}

#[tokio::test]
async fn a_leader_whose_lease_was_taken_over_publishes_nothing_over_the_new_holder() {
    // A long lease (renewed every 10 s) and a refresh every second: the leader goes on refreshing for
    // seconds after another holder took its lease; only the fencing token stops its versions.
    let settings = ReplicaSettings {
        lease_s: 30,
        ..BUSY
    };
    let Some((_emu, redis, replicas)) = cluster("fence", 8, 2, settings).await else {
        return;
    };
    let p = prefix("fence");
    let lead = leader(&replicas).await;
    let current = || async {
        resp_int(
            &redis
                .command(&["GET", &format!("{p}current")])
                .await
                .unwrap(),
        )
    };
    // Versions are being published by the leader.
    let moving = current().await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            current().await.unwrap() > moving
        })
        .await,
        "the leader published nothing"
    );
    // Another holder takes the lease (as a replica elected while this one was paused would).
    let reply = redis
        .command(&["SET", &format!("{p}lease"), "999999", "PX", "60000"])
        .await
        .unwrap();
    assert!(reply.starts_with("+OK"), "{reply}");
    let fenced_at = current().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        current().await.unwrap(),
        fenced_at,
        "the old leader published over the new lease holder"
    );
    let store = replicas[lead].store().await;
    assert!(
        store["fenced"].as_u64().unwrap() > 0,
        "Redis refused no version: {store}"
    );
}

#[tokio::test]
async fn a_refresh_in_flight_on_the_leader_keeps_a_write_made_on_another_replica() {
    let Some((emu, _redis, replicas)) = cluster("refresh-overlay", 20, 2, QUICK).await else {
        return;
    };
    let lead = leader(&replicas).await;
    let (leader_r, other) = (&replicas[lead], &replicas[1 - lead]);
    converged(&[leader_r, other], 1).await;
    let list: Value = other.get("/Users?count=1").await.json().await.unwrap();
    let id = list["Resources"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    // A slow JumpCloud: the refresh reads the users first, then takes seconds over the rest.
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/__emulator/faults", emu.base_url()))
        .json(&json!({"latency_ms": 400}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let before = leader_r.readyz().await.unwrap().1["last_refresh"]["finished_at"].clone();
    let r = leader_r
        .http
        .post(format!("{}/admin/refresh", leader_r.served.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Once the refresh has read the users, the other replica writes one of them.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "title", "value": "written-mid-refresh"}]});
    assert_eq!(other.patch(&path, &body).await.status(), 200);
    let refreshed = eventually(Duration::from_secs(60), || async {
        leader_r.readyz().await.unwrap().1["last_refresh"]["finished_at"] != before
    })
    .await;
    assert!(refreshed, "the refresh never finished");
    let last = leader_r.readyz().await.unwrap().1["last_refresh"].clone();
    assert_eq!(last["ok"], true, "{last}");
    let v = converged(&[leader_r, other], 1).await;
    for r in [leader_r, other] {
        let u: Value = r.get(&path).await.json().await.unwrap();
        assert_eq!(
            u["title"], "written-mid-refresh",
            "version {v} rolled the write back: {u}"
        );
    }
}

/// The ids of the first `n` users `r` lists.
async fn user_ids(r: &Replica, n: usize) -> Vec<String> {
    let list: Value = r
        .get(&format!("/Users?count={n}"))
        .await
        .json()
        .await
        .unwrap();
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The bulk strings of a RESP reply (an array of them, or one).
fn resp_strings(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') && l != "$-1" {
            out.extend(lines.next().map(str::to_owned));
        }
    }
    out
}

#[tokio::test]
async fn writes_travel_as_deltas_and_every_replica_even_a_new_one_serves_them_alike() {
    let Some((emu, redis, mut replicas)) = cluster("deltas", 30, 2, QUICK).await else {
        return;
    };
    converged(&[&replicas[0], &replicas[1]], 1).await;
    let ids = user_ids(&replicas[0], 30).await;
    assert_eq!(ids.len(), 30);
    // More writes in a row than a chain of deltas grows (64): one of them is shared whole.
    for i in 0..70 {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "title", "value": format!("t-{i}")}]});
        let r = replicas[i % 2]
            .patch(&format!("/Users/{}", ids[i % 30]), &body)
            .await;
        assert_eq!(r.status(), 200, "write {i}");
    }
    let mut shared = (0, 0);
    for r in &replicas {
        let s = r.store().await;
        shared.0 += s["shared"]["deltas"].as_u64().unwrap();
        shared.1 += s["shared"]["wholes"].as_u64().unwrap();
    }
    // 69 deltas; the first refresh and the 65th write whole.
    assert_eq!(shared, (69, 2), "(deltas, wholes) shared");
    // A replica that starts now loads the newest whole version and the deltas after it.
    replicas.push(Replica::start(&emu.base_url(), &redis, &prefix("deltas"), QUICK).await);
    let all: Vec<&Replica> = replicas.iter().collect();
    converged(&all, 71).await;
    for id in &ids {
        let path = format!("/Users/{id}");
        let mut seen = HashSet::new();
        for r in &replicas {
            let resp = r.get(&path).await;
            assert_eq!(resp.status(), 200);
            let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
            seen.insert((etag, resp.text().await.unwrap()));
        }
        assert_eq!(
            seen.len(),
            1,
            "the replicas serve {id} differently: {seen:?}"
        );
    }
    let last: Value = replicas[2]
        .get(&format!("/Users/{}", ids[69 % 30]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["title"], "t-69");
    // Redis keeps the versions kept for walks and what they are made on: here all 71, two of them whole.
    let p = prefix("deltas");
    let kept = resp_strings(
        &redis
            .command(&["LRANGE", &format!("{p}versions"), "0", "-1"])
            .await
            .unwrap(),
    );
    assert_eq!(kept.len(), 71, "{kept:?}");
    let mut wholes = 0;
    for v in &kept {
        let m = resp_strings(&redis.command(&["GET", &format!("{p}v:{v}")]).await.unwrap());
        assert_eq!(m.len(), 1, "version {v}'s manifest is kept");
        if m[0].split(':').count() == 3 {
            wholes += 1;
        }
    }
    assert_eq!(wholes, 2);
    // Eight more writes: the oldest kept version (the 8th newest) is then the second whole one, and
    // everything before it goes.
    for i in 0..8 {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "title", "value": format!("u-{i}")}]});
        let r = replicas[i % 3]
            .patch(&format!("/Users/{}", ids[i]), &body)
            .await;
        assert_eq!(r.status(), 200, "write {i}");
    }
    let kept = resp_strings(
        &redis
            .command(&["LRANGE", &format!("{p}versions"), "0", "-1"])
            .await
            .unwrap(),
    );
    assert!(kept.len() <= 14, "old versions are dropped: {kept:?}");
    let gone = resp_strings(&redis.command(&["GET", &format!("{p}v:2")]).await.unwrap());
    assert!(gone.is_empty(), "version 2 is dropped with its chain");
}

/// The emulator's request count for `route` (e.g. `GET /api/systemusers`), all statuses.
async fn route_calls(emu: &jumpcloud_scim::emulator::RunningEmulator, route: &str) -> u64 {
    let v = emulator_stats(emu).await;
    v["routes"][route]
        .as_object()
        .map_or(0, |by| by.values().filter_map(Value::as_u64).sum())
}

/// An admin's edit in the JumpCloud console: `title` on user `id`.
async fn console_title(emu: &jumpcloud_scim::emulator::RunningEmulator, id: &str, title: &str) {
    let r = reqwest::Client::new()
        .put(format!("{}/api/systemusers/{id}", emu.base_url()))
        .header("x-api-key", "demo-key")
        .json(&json!({ "jobTitle": title }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Whether every one of `replicas` shows `title` on user `id` within 20 s.
async fn shows_title(replicas: &[&Replica], id: &str, title: &str) -> bool {
    eventually(Duration::from_secs(20), || async {
        for r in replicas {
            let u: Value = r.get(&format!("/Users/{id}")).await.json().await.unwrap();
            if u["title"] != title {
                return false;
            }
        }
        true
    })
    .await
}

#[tokio::test]
async fn a_new_leader_reads_the_feed_on_from_the_shared_cursor_without_a_full_refresh() {
    let settings = ReplicaSettings {
        insights: true,
        ..QUICK
    };
    let Some((emu, _redis, mut replicas)) = cluster("feed-cursor", 30, 2, settings).await else {
        return;
    };
    converged(&[&replicas[0], &replicas[1]], 1).await;
    let ids = user_ids(&replicas[0], 2).await;
    // The leader reads the feed: a console edit reaches both replicas without a refresh.
    console_title(&emu, &ids[0], "Seen by the first leader").await;
    assert!(
        shows_title(
            &[&replicas[0], &replicas[1]],
            &ids[0],
            "Seen by the first leader"
        )
        .await,
        "the first leader's feed never showed the edit"
    );
    let lists = route_calls(&emu, "GET /api/systemusers").await;
    let lead = leader(&replicas).await;
    for (i, r) in replicas.iter().enumerate() {
        let feed = r.readyz().await.unwrap().1["insights"]["state"].clone();
        if i == lead {
            assert_ne!(feed, "read_by_leader", "the leader reads the feed itself");
        } else {
            assert_eq!(feed, "read_by_leader", "the follower's /readyz");
        }
    }
    replicas[lead].kill().await;
    let dead = replicas.remove(lead);
    assert!(
        eventually(Duration::from_secs(15), || async {
            replicas[0].is_leader().await
        })
        .await,
        "nobody took over"
    );
    console_title(&emu, &ids[1], "Seen by the new leader").await;
    assert!(
        shows_title(&[&replicas[0]], &ids[1], "Seen by the new leader").await,
        "the new leader's feed never showed the edit"
    );
    assert_eq!(
        route_calls(&emu, "GET /api/systemusers").await,
        lists,
        "the new leader listed every user (a full refresh) instead of reading the feed on"
    );
    let feed = replicas[0].readyz().await.unwrap().1["insights"].clone();
    assert_ne!(feed["state"], "read_by_leader", "{feed}");
    drop(dead);
}
