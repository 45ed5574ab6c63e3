//! Joiner, mover, leaver: one person's lifecycle as an identity-governance platform (SailPoint, Entra, Okta)
//! provisions it through SCIM 2.0.
//!
//! Against the demo (the service in front of the JumpCloud emulator, with its injected 502s and outages):
//!
//! ```sh
//! cargo run --release -- demo --token demo-token-123 &
//! cargo run --release --example joiner_mover_leaver -- --token demo-token-123
//! cargo run --release --example joiner_mover_leaver -- --token demo-token-123 --delete
//! ```
//!
//! The steps:
//! - **joiner**: `POST /Users` with the enterprise extension (employeeNumber, department, and the manager named by
//!   `$ref`, the manager's own `meta.location`), then `PATCH /Groups/{id}` adding the user to two groups
//!   (`{"op":"add","path":"members","value":[{"value":"<id>"}]}`), as SailPoint grants entitlements.
//! - **mover**: `PATCH /Users/{id}` changing title and department in one path-less `Replace` whose value uses
//!   URN-prefixed keys, as Entra sends it (dotted keys such as `name.givenName` are read the same way); then a
//!   move from one group to another: `remove` with the path `members[value eq "<id>"]` on the old group, `add` on
//!   the new one.
//! - **leaver**: `PATCH active=false` (SailPoint and Okta disable, they do not delete), then the same with Entra's
//!   string `"False"`; the user is still listed, `active: false`. With `--delete`, `DELETE /Users/{id}` and a
//!   read that answers 404.
//!
//! After every step the user is read back with `GET /Users/{id}` and what changed is printed, `groups`
//! included (they are derived from group membership: the attribute SailPoint reads entitlements from). Each
//! write's answer carries the `X-Snapshot-Version` it was published in, and the read that follows is answered
//! from that version or a later one: the write is visible at once (read-your-writes), no refresh needed.
//!
//! The user is deleted at the end unless `--keep` (the run's user names are unique, so runs do not collide).
//! Like the platforms, the program retries an answer of 429 or 503 after its `Retry-After`, for up to five
//! minutes: the service answers a write with 503 while JumpCloud is down (the demo has a 100 s outage every
//! 10 minutes), and a retried create that had landed answers 409 naming the user, which is then looked up.
//! Any other non-2xx stops it with exit 1.
//!
//! Flags: `--base URL` (default `http://127.0.0.1:8080/scim/v2`), `--token TOKEN` (or `JCSCIM_TOKEN`),
//! `--join A,B` (the joiner's two groups, default `Engineering,VPN Users`), `--move-to NAME` (the mover leaves the
//! first joiner group for this one, default `Sales`), `--delete`, `--keep`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// How long one request answered 429 or 503 is retried (the demo's JumpCloud outages last 100 s).
const RETRY_FOR: Duration = Duration::from_secs(300);

#[derive(Parser, Debug)]
#[command(
    about = "Joiner, mover, leaver through a SCIM 2.0 service, reading the user back after every step"
)]
struct Args {
    /// SCIM base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/scim/v2")]
    base: String,
    /// Bearer token (a provisioning credential).
    #[arg(long, env = "JCSCIM_TOKEN")]
    token: String,
    /// The joiner's two groups, by displayName.
    #[arg(long, value_delimiter = ',', default_value = "Engineering,VPN Users")]
    join: Vec<String>,
    /// The mover leaves the first joiner group for this one.
    #[arg(long, default_value = "Sales")]
    move_to: String,
    /// Finish the leaver with DELETE /Users/{id}.
    #[arg(long)]
    delete: bool,
    /// Keep the user at the end (disabled) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// A SCIM client: base URL, bearer token, one connection pool.
struct Scim {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// One answer: status, body (`Null` when empty) and the snapshot version it was made from.
struct Answer {
    status: StatusCode,
    body: Value,
    snapshot: Option<u64>,
    /// Whether the request was sent more than once (after a 429 or 503).
    retried: bool,
}

impl Answer {
    fn version(&self) -> String {
        self.snapshot.map_or("none".into(), |v| v.to_string())
    }
}

impl Scim {
    /// Send a request; an answer of 429 or 503 is retried after its `Retry-After`. Any final status is returned.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let shown = show(path, query);
        let mut retried = false;
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .query(query)
                .bearer_auth(&self.token)
                .header("accept", "application/scim+json");
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/scim+json")
                    .body(b.to_string());
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {shown}: no answer"))?;
            let status = resp.status();
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
            let snapshot = header("x-snapshot-version").and_then(|v| v.parse().ok());
            let text = resp.text().await?;
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)
                    .with_context(|| format!("{method} {shown}: the answer is not JSON: {text}"))?
            };
            let wait = Duration::from_secs(retry_after.unwrap_or(5).min(60));
            if matches!(status.as_u16(), 429 | 503) && Instant::now() + wait < deadline {
                println!(
                    "    {method} {shown} answered {status} ({}); retrying in {} s (Retry-After)",
                    detail(&body),
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                retried = true;
                continue;
            }
            return Ok(Answer {
                status,
                body,
                snapshot,
                retried,
            });
        }
    }

    /// [`send`](Self::send), and any non-2xx answer is an error naming the request and the service's detail.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let a = self.send(method.clone(), path, query, body).await?;
        if !a.status.is_success() {
            let shown = show(path, query);
            bail!(
                "{method} {shown} answered {}: {}",
                a.status,
                detail(&a.body)
            );
        }
        Ok(a)
    }

    /// The users (or groups, without their members) `filter` matches: a ListResponse.
    async fn search(&self, endpoint: &str, filter: &str) -> anyhow::Result<Answer> {
        let mut query = vec![("filter", filter)];
        if endpoint == "/Groups" {
            query.push(("excludedAttributes", "members"));
        }
        self.call(Method::GET, endpoint, &query, None).await
    }

    /// A group's id by its displayName (Entra's lookup: `displayName eq`, without the member list).
    async fn group_id(&self, name: &str) -> anyhow::Result<String> {
        let list = self
            .search("/Groups", &format!("displayName eq \"{name}\""))
            .await?;
        list.body["Resources"][0]["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| {
                format!("no group named {name:?} (choose others with --join / --move-to)")
            })
    }
}

/// `path?a=b&c=d` for people (not percent-encoded).
fn show(path: &str, query: &[(&str, &str)]) -> String {
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// The `detail` of a SCIM error, or the whole body.
fn detail(body: &Value) -> String {
    body["detail"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_string)
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// What this program shows of a user: a few attributes, and its groups by name.
#[derive(Default)]
struct View {
    fields: BTreeMap<&'static str, String>,
    groups: BTreeSet<String>,
    group_ids: BTreeSet<String>,
}

fn view(u: &Value) -> View {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let ent = &u[ENT];
    let manager = &ent["manager"];
    let mut fields = BTreeMap::new();
    for (name, value) in [
        ("userName", &u["userName"]),
        ("active", &u["active"]),
        ("title", &u["title"]),
        ("department", &ent["department"]),
        ("costCenter", &ent["costCenter"]),
        ("employeeNumber", &ent["employeeNumber"]),
        ("manager", &manager["value"]),
    ] {
        fields.insert(name, text(value));
    }
    if let Some(name) = manager["displayName"].as_str() {
        fields.insert("manager", format!("{} ({name})", text(&manager["value"])));
    }
    let groups = u["groups"].as_array().cloned().unwrap_or_default();
    View {
        fields,
        groups: groups.iter().map(|g| text(&g["display"])).collect(),
        group_ids: groups.iter().map(|g| text(&g["value"])).collect(),
    }
}

/// Read the user back after `write`, print what changed since `before`, check the read saw the write's snapshot.
async fn read_back(scim: &Scim, id: &str, write: &Answer, before: &View) -> anyhow::Result<View> {
    let read = scim
        .call(Method::GET, &format!("/Users/{id}"), &[], None)
        .await?;
    let after = view(&read.body);
    for (name, new) in &after.fields {
        match before.fields.get(name) {
            Some(old) if old == new => {}
            Some(old) if old.is_empty() => println!("    {name}: (none) -> {new}"),
            Some(old) => println!("    {name}: {old} -> {new}"),
            None if new.is_empty() => {}
            None => println!("    {name}: {new}"),
        }
    }
    let added: Vec<String> = after
        .groups
        .difference(&before.groups)
        .map(|g| format!("+{g}"))
        .collect();
    let removed: Vec<String> = before
        .groups
        .difference(&after.groups)
        .map(|g| format!("-{g}"))
        .collect();
    if !added.is_empty() || !removed.is_empty() {
        let now: Vec<&str> = after.groups.iter().map(String::as_str).collect();
        println!(
            "    groups: {} (now: {})",
            [removed, added].concat().join(" "),
            now.join(", ")
        );
    }
    ensure!(
        read.snapshot.is_some() && read.snapshot >= write.snapshot,
        "the read answered from snapshot version {}, older than the write's {}",
        read.version(),
        write.version()
    );
    println!(
        "    read back from X-Snapshot-Version {} (the write's was {}): visible at once",
        read.version(),
        write.version()
    );
    Ok(after)
}

/// Add (`true`) or remove `id` as a member of group `gid`.
async fn membership(
    scim: &Scim,
    gid: &str,
    name: &str,
    id: &str,
    add: bool,
) -> anyhow::Result<Answer> {
    let op = if add {
        json!({"op": "add", "path": "members", "value": [{"value": id}]})
    } else {
        json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})
    };
    let a = scim
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &[],
            Some(&patch(json!([op]))),
        )
        .await?;
    println!(
        "  PATCH /Groups/{gid} ({name}) {} member -> {}, X-Snapshot-Version {}",
        if add { "add" } else { "remove" },
        a.status.as_u16(),
        a.version()
    );
    Ok(a)
}

/// The joiner's `POST /Users`; a retried create that answers 409 had landed the first time: find it.
async fn create(scim: &Scim, body: &Value) -> anyhow::Result<Answer> {
    let a = scim.send(Method::POST, "/Users", &[], Some(body)).await?;
    if a.status == StatusCode::CONFLICT && a.retried {
        let user_name = body["userName"].as_str().unwrap_or_default();
        println!(
            "    the retried create answered 409 ({}): it had landed; looking it up",
            detail(&a.body)
        );
        let mut found = scim
            .search("/Users", &format!("userName eq \"{user_name}\""))
            .await?;
        found.body = found.body["Resources"][0].take();
        found.status = a.status;
        ensure!(
            found.body.is_object(),
            "the 409 named a user that a search does not find"
        );
        return Ok(found);
    }
    if !a.status.is_success() {
        bail!("POST /Users answered {}: {}", a.status, detail(&a.body));
    }
    Ok(a)
}

/// Every step after the create; `[g1, g2, g3]` are the ids of the groups named by `--join` and `--move-to`.
/// `deleted` is set once the user is gone.
async fn lifecycle(
    scim: &Scim,
    args: &Args,
    [g1, g2, g3]: &[String; 3],
    id: &str,
    joined: View,
    deleted: &mut bool,
) -> anyhow::Result<()> {
    let user_path = format!("/Users/{id}");
    let [first, second] = [&args.join[0], &args.join[1]];

    println!("\njoiner: entitlements");
    membership(scim, g1, first, id, true).await?;
    let w = membership(scim, g2, second, id, true).await?;
    let now = read_back(scim, id, &w, &joined).await?;
    ensure!(
        now.group_ids.contains(g1) && now.group_ids.contains(g2),
        "the user's groups do not show both new memberships"
    );

    println!("\nmover: new title and department (Entra's path-less Replace with URN keys)");
    let ops = patch(json!([{"op": "Replace", "value": {
        "title": "Account Executive",
        format!("{ENT}:department"): "Sales",
        format!("{ENT}:costCenter"): "CC-SALES-01",
    }}]));
    let w = scim
        .call(Method::PATCH, &user_path, &[], Some(&ops))
        .await?;
    println!(
        "  PATCH {user_path} -> {}, X-Snapshot-Version {}",
        w.status.as_u16(),
        w.version()
    );
    let moved = read_back(scim, id, &w, &now).await?;
    ensure!(
        moved.fields["title"] == "Account Executive" && moved.fields["department"] == "Sales",
        "title and department did not change"
    );

    println!("\nmover: from {first} to {}", args.move_to);
    membership(scim, g1, first, id, false).await?;
    let w = membership(scim, g3, &args.move_to, id, true).await?;
    let now = read_back(scim, id, &w, &moved).await?;
    ensure!(
        !now.group_ids.contains(g1) && now.group_ids.contains(g3),
        "the move between groups is not in the user's groups"
    );

    println!("\nleaver: disable");
    let off = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let w = scim
        .call(Method::PATCH, &user_path, &[], Some(&off))
        .await?;
    println!(
        "  PATCH {user_path} active=false -> {}, X-Snapshot-Version {}",
        w.status.as_u16(),
        w.version()
    );
    let now = read_back(scim, id, &w, &now).await?;
    ensure!(now.fields["active"] == "false", "the user is still active");
    // Entra (without its aadOptscim062020 flag) sends the boolean as a string.
    let entra = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let w = scim
        .call(Method::PATCH, &user_path, &[], Some(&entra))
        .await?;
    println!(
        "  PATCH {user_path} active=\"False\" (Entra's string) -> {}, active {}, X-Snapshot-Version {}",
        w.status.as_u16(),
        w.body["active"],
        w.version()
    );
    let user_name = &now.fields["userName"];
    let found = scim
        .search("/Users", &format!("userName eq \"{user_name}\""))
        .await?
        .body;
    ensure!(
        found["totalResults"] == 1 && found["Resources"][0]["active"] == false,
        "a disabled user must still be listed, with active false: {found}"
    );
    println!(
        "  GET /Users?filter=userName eq \"{user_name}\" -> still listed, active false (the next aggregation sees a disabled account, not a vanished one)"
    );

    if args.delete {
        println!("\nleaver: delete");
        let w = scim.call(Method::DELETE, &user_path, &[], None).await?;
        *deleted = true;
        println!(
            "  DELETE {user_path} -> {}, X-Snapshot-Version {}",
            w.status.as_u16(),
            w.version()
        );
        let gone = scim.send(Method::GET, &user_path, &[], None).await?;
        println!(
            "  GET {user_path} -> {} from X-Snapshot-Version {}",
            gone.status.as_u16(),
            gone.version()
        );
        ensure!(
            gone.status == StatusCode::NOT_FOUND,
            "a deleted user is still served"
        );
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        args.join.len() == 2,
        "--join takes two group names, e.g. --join Engineering,\"VPN Users\""
    );
    let scim = Scim {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        base: args.base.trim_end_matches('/').to_string(),
        token: args.token.clone(),
    };
    let groups = [
        scim.group_id(&args.join[0]).await?,
        scim.group_id(&args.join[1]).await?,
        scim.group_id(&args.move_to).await?,
    ];
    // The manager: the directory's first user, named by its own meta.location.
    let first = scim
        .call(
            Method::GET,
            "/Users",
            &[("startIndex", "1"), ("count", "1")],
            None,
        )
        .await?;
    let manager = &first.body["Resources"][0];
    let manager_ref = manager["meta"]["location"]
        .as_str()
        .context("the directory has no user to be the manager")?;

    // Unique per run, so repeated runs (and --keep) do not collide.
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    let tag = format!("{:06x}", millis % 0xff_ffff);
    let user_name = format!("jordan.lee.{tag}");
    let body = json!({
        "schemas": [CORE, ENT],
        "userName": user_name,
        "name": {"givenName": "Jordan", "familyName": "Lee"},
        "displayName": "Jordan Lee",
        "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
        "title": "Software Engineer",
        "active": true,
        ENT: {
            "employeeNumber": format!("E-{tag}"),
            "department": "Engineering",
            "manager": {"$ref": manager_ref},
        },
    });

    println!(
        "joiner: create {user_name}, managed by {} ({manager_ref})",
        manager["userName"].as_str().unwrap_or("?")
    );
    let w = create(&scim, &body).await?;
    let id = w.body["id"]
        .as_str()
        .context("the created user has no id")?
        .to_string();
    println!(
        "  POST /Users -> {}, id {id}, X-Snapshot-Version {}",
        w.status.as_u16(),
        w.version()
    );
    let mut deleted = false;
    let result = async {
        let joined = read_back(&scim, &id, &w, &View::default()).await?;
        lifecycle(&scim, &args, &groups, &id, joined, &mut deleted).await
    }
    .await;

    if args.keep && !deleted {
        println!("\nkept {user_name} ({id}); delete it with DELETE /Users/{id}");
    } else if !deleted {
        // Also after a failed step: leave nothing behind.
        let gone = scim
            .call(Method::DELETE, &format!("/Users/{id}"), &[], None)
            .await;
        match gone {
            Ok(a) => println!("\ncleanup: DELETE /Users/{id} -> {}", a.status.as_u16()),
            Err(e) => eprintln!("\ncleanup failed, user {id} is left behind: {e:#}"),
        }
    }
    result
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("joiner_mover_leaver failed: {e:#}");
        std::process::exit(1);
    }
}
