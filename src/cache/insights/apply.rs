//! A [`Plan`] carried out: fetch from JumpCloud only what it names (a user by id; a group, and its members
//! when it is new; the directory list and a directory's holders), then edit the published data with what
//! came back and the edges the events named, saying what was touched so only those entries are derived
//! again.
//!
//! The fetch is IO ([`fetch`]); the edit is pure ([`edit`]) and runs under the publish lock on whatever data
//! is published then, so it checks every end it links against that data rather than against the snapshot
//! the plan was made from. An end the data does not hold is fetched too (a user whose creation came in an
//! earlier batch that failed, a group created elsewhere); an end that no longer exists drops its edge.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt, stream};
use imbl::OrdSet;

use super::plan::{Edge, Plan, Want};
use crate::cache::{Data, Id, PackedUser, Touched};
use crate::jumpcloud::{
    AssocTarget, JcClient, JcDirectory, JcDirectoryKind, JcError, JcGroup, JcUser,
};

/// Fetches of one batch in flight at once, as a refresh keeps.
const FETCH_CONCURRENCY: usize = 4;

/// What a plan needs fetched, once the ends the data does not hold are added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub users: BTreeSet<String>,
    /// Group id → whether its members are fetched too.
    pub groups: BTreeMap<String, bool>,
    pub directories: bool,
    pub holders: BTreeSet<String>,
}

impl Needs {
    /// What `plan` fetches against `data`: its own fetches, and each end of an edge it adds that `data`
    /// does not hold (a group so found comes with its members; a directory with the list and its holders).
    pub fn of(plan: &Plan, data: &Data) -> Needs {
        let mut n = Needs {
            directories: plan.directories,
            holders: plan.holders.clone(),
            ..Needs::default()
        };
        for (id, want) in &plan.users {
            if *want != Want::Remove {
                n.users.insert(id.clone());
            }
        }
        for (id, want) in &plan.groups {
            if let Want::Fetch { members } = want {
                n.groups.insert(id.clone(), *members);
            }
        }
        let user = |n: &mut Needs, u: &str| {
            if !data.users.contains_key(u) && !plan.users.contains_key(u) {
                n.users.insert(u.to_owned());
            }
        };
        let group = |n: &mut Needs, g: &str| {
            if !data.groups.contains_key(g) && !plan.groups.contains_key(g) {
                n.groups.insert(g.to_owned(), true);
            }
        };
        let directory = |n: &mut Needs, d: &str| {
            if !data.directories.contains_key(d) {
                n.directories = true;
                n.holders.insert(d.to_owned());
            }
        };
        for (edge, add) in &plan.edges {
            // Removing an edge to something not held removes nothing.
            if !add {
                continue;
            }
            match edge {
                Edge::Member { group: g, user: u } => {
                    user(&mut n, u);
                    group(&mut n, g);
                }
                Edge::DirectoryUser {
                    directory: d,
                    user: u,
                } => {
                    user(&mut n, u);
                    directory(&mut n, d);
                }
                Edge::DirectoryGroup {
                    directory: d,
                    group: g,
                } => {
                    group(&mut n, g);
                    directory(&mut n, d);
                }
            }
        }
        n
    }

    /// How many objects this fetches (a group's members and a directory's holders count as one each).
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + usize::from(self.directories) + self.holders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A group as fetched, and its member ids when they were fetched too.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRead {
    pub group: JcGroup,
    pub members: Option<Vec<String>>,
}

/// What came back: `None` where JumpCloud answered 404 (the object is gone).
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub users: BTreeMap<String, Option<JcUser>>,
    pub groups: BTreeMap<String, Option<GroupRead>>,
    pub directories: Option<Vec<JcDirectory>>,
    /// Directory id → (users, user groups) bound to it directly.
    pub holders: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

/// Fetch what `needs` names. Any failure fails the whole fetch: the batch is then not published, and the
/// next poll reads its events again.
pub async fn fetch(client: &JcClient, needs: &Needs, data: &Data) -> Result<Fetched, JcError> {
    // Owned inputs and a client per future (as the refresher's fetch has): the futures must be `Send` for
    // any lifetime, which closures over borrowed items cannot promise.
    let client = client.clone();
    let user_ids: Vec<String> = needs.users.iter().cloned().collect();
    let group_ids: Vec<(String, bool)> =
        needs.groups.iter().map(|(g, m)| (g.clone(), *m)).collect();
    let users = stream::iter(user_ids)
        .map(|id| {
            let client = client.clone();
            async move {
                let u = client.get_user(&id).await?;
                Ok::<_, JcError>((id, u))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let groups = stream::iter(group_ids)
        .map(|(id, members)| {
            let client = client.clone();
            async move {
                let read = fetch_group(&client, &id, members).await?;
                Ok::<_, JcError>((id, read))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let directories = if needs.directories {
        Some(client.list_directories().await?)
    } else {
        None
    };
    let known: Vec<JcDirectory> = needs
        .holders
        .iter()
        .filter_map(|d| {
            directories
                .as_ref()
                .and_then(|list: &Vec<JcDirectory>| list.iter().find(|x| &x.id == d).cloned())
                .or_else(|| data.directories.get(d.as_str()).map(|x| (**x).clone()))
        })
        .filter(|d| !matches!(d.kind, JcDirectoryKind::Other(_)))
        .collect();
    let holders = stream::iter(known)
        .map(|d| {
            let client = client.clone();
            async move {
                let users = client
                    .list_directory_associations(&d, AssocTarget::User)
                    .await?;
                let groups = client
                    .list_directory_associations(&d, AssocTarget::UserGroup)
                    .await?;
                Ok::<_, JcError>((d.id, (users, groups)))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Fetched {
        users,
        groups,
        directories,
        holders,
    })
}

/// A group, and its members when `members`; `None` when it is gone (also between the two calls).
async fn fetch_group(
    client: &JcClient,
    id: &str,
    members: bool,
) -> Result<Option<GroupRead>, JcError> {
    let Some(group) = client.get_group(id).await? else {
        return Ok(None);
    };
    if !members {
        return Ok(Some(GroupRead {
            group,
            members: None,
        }));
    }
    match client.list_group_members(id).await {
        Ok(m) => Ok(Some(GroupRead {
            group,
            members: Some(m),
        })),
        Err(JcError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What an edit did.
#[derive(Debug, Clone, Default)]
pub struct Edited {
    pub touched: Touched,
    pub users_removed: usize,
    pub groups_removed: usize,
}

fn id_of(data_key: Option<&Id>, s: &str) -> Id {
    data_key.cloned().unwrap_or_else(|| Arc::from(s))
}

/// Edit `data` with `fetched` and the edges of `plan`; only what actually changes is touched, so a batch
/// of events this service's own writes caused (already published) touches nothing.
pub fn edit(data: &mut Data, plan: &Plan, fetched: &Fetched) -> Edited {
    let mut out = Edited::default();
    if let Some(list) = &fetched.directories {
        edit_directories(data, list, &mut out.touched);
    }
    for (id, user) in &fetched.users {
        match user {
            Some(u) => put_user(data, u, &mut out.touched),
            None => out.users_removed += remove_user(data, id, &mut out.touched),
        }
    }
    for (id, want) in &plan.users {
        if *want == Want::Remove {
            out.users_removed += remove_user(data, id, &mut out.touched);
        }
    }
    for (id, group) in &fetched.groups {
        match group {
            Some(read) => put_group(data, &read.group, read.members.as_deref(), &mut out.touched),
            None => out.groups_removed += remove_group(data, id, &mut out.touched),
        }
    }
    for (id, want) in &plan.groups {
        if *want == Want::Remove {
            out.groups_removed += remove_group(data, id, &mut out.touched);
        }
    }
    for (d, (users, groups)) in &fetched.holders {
        set_holders(data, d, users, groups, &mut out.touched);
    }
    for (edge, add) in &plan.edges {
        set_edge(data, edge, *add, plan, fetched, &mut out.touched);
    }
    out
}

fn put_user(data: &mut Data, u: &JcUser, touched: &mut Touched) {
    if data
        .users
        .get(u.id.as_str())
        .is_some_and(|old| old.same(&PackedUser::pack(u)))
    {
        return;
    }
    let uid = data.put_user(u.clone());
    touched.users.insert(uid);
}

/// 1 when the user was held (and is removed), else 0.
fn remove_user(data: &mut Data, id: &str, touched: &mut Touched) -> usize {
    let Some((uid, _)) = data.users.get_key_value(id) else {
        return 0;
    };
    let uid = uid.clone();
    touched.extend(&data.remove_user(&uid));
    1
}

fn remove_group(data: &mut Data, id: &str, touched: &mut Touched) -> usize {
    let Some((gid, _)) = data.groups.get_key_value(id) else {
        return 0;
    };
    let gid = gid.clone();
    touched.extend(&data.remove_group(&gid));
    1
}

/// A group as JumpCloud has it, and its members when they were fetched. A new group or a new name shows in
/// every member's resource; anything else only in the group's own.
fn put_group(data: &mut Data, g: &JcGroup, members: Option<&[String]>, touched: &mut Touched) {
    let old = data.groups.get(g.id.as_str()).cloned();
    let gid = id_of(
        data.groups.get_key_value(g.id.as_str()).map(|(k, _)| k),
        &g.id,
    );
    if old.as_deref() != Some(g) {
        data.groups.insert(gid.clone(), Arc::new(g.clone()));
        if old.is_none_or(|o| o.name != g.name) {
            touched.groups.insert(gid.clone());
        } else {
            touched.member_lists.insert(gid.clone());
        }
    }
    let Some(members) = members else {
        return;
    };
    let want: BTreeSet<Id> = members
        .iter()
        .filter_map(|m| data.users.get_key_value(m.as_str()).map(|(k, _)| k.clone()))
        .collect();
    let have: BTreeSet<Id> = data
        .members
        .get(&gid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    for u in have.difference(&want) {
        data.remove_member(&gid, u);
        touched.users.insert(u.clone());
        touched.member_lists.insert(gid.clone());
    }
    for u in want.difference(&have) {
        data.add_member(&gid, u);
        touched.users.insert(u.clone());
        touched.member_lists.insert(gid.clone());
    }
}

/// The directory list as JumpCloud has it: new and changed directories in, removed ones out with their
/// bindings.
fn edit_directories(data: &mut Data, list: &[JcDirectory], touched: &mut Touched) {
    let listed: BTreeSet<&str> = list.iter().map(|d| d.id.as_str()).collect();
    let gone: Vec<Id> = data
        .directories
        .keys()
        .filter(|d| !listed.contains(&***d))
        .cloned()
        .collect();
    for d in gone {
        data.directories.remove(&d);
        data.directory_users.remove(&d);
        data.directory_groups.remove(&d);
        touched.directories.insert(d.clone());
        // Its entry as a group goes; its holders no longer show it.
        touched.groups.insert(d);
    }
    for d in list {
        if data.directories.get(d.id.as_str()).map(|x| &**x) == Some(d) {
            continue;
        }
        let did = id_of(
            data.directories
                .get_key_value(d.id.as_str())
                .map(|(k, _)| k),
            &d.id,
        );
        data.directories.insert(did.clone(), Arc::new(d.clone()));
        touched.directories.insert(did);
    }
}

/// A directory's users and groups bound to it, limited to those the data holds.
fn set_holders(
    data: &mut Data,
    d: &str,
    users: &[String],
    groups: &[String],
    touched: &mut Touched,
) {
    let Some((did, _)) = data.directories.get_key_value(d) else {
        return;
    };
    let did = did.clone();
    let users: OrdSet<Id> = users
        .iter()
        .filter_map(|u| data.users.get_key_value(u.as_str()).map(|(k, _)| k.clone()))
        .collect();
    let groups: OrdSet<Id> = groups
        .iter()
        .filter_map(|g| {
            data.groups
                .get_key_value(g.as_str())
                .map(|(k, _)| k.clone())
        })
        .collect();
    let same = data.directory_users.get(&did).is_some_and(|s| *s == users)
        && data
            .directory_groups
            .get(&did)
            .is_some_and(|s| *s == groups);
    if same {
        return;
    }
    data.directory_users.insert(did.clone(), users);
    data.directory_groups.insert(did.clone(), groups);
    touched.directories.insert(did);
}

/// One edge an event named, unless something fetched in the same batch already says how it stands (a
/// group's members, a directory's holders) or an end is gone.
fn set_edge(
    data: &mut Data,
    edge: &Edge,
    add: bool,
    plan: &Plan,
    fetched: &Fetched,
    touched: &mut Touched,
) {
    let user = |data: &Data, u: &str| data.users.get_key_value(u).map(|(k, _)| k.clone());
    let group = |data: &Data, g: &str| data.groups.get_key_value(g).map(|(k, _)| k.clone());
    let directory =
        |data: &Data, d: &str| data.directories.get_key_value(d).map(|(k, _)| k.clone());
    let members_fetched = |g: &str| {
        matches!(
            fetched.groups.get(g),
            Some(Some(GroupRead {
                members: Some(_),
                ..
            }))
        )
    };
    let removed = |map: &BTreeMap<String, Want>, id: &str| map.get(id) == Some(&Want::Remove);
    match edge {
        Edge::Member { group: g, user: u } => {
            if members_fetched(g) || removed(&plan.groups, g) || removed(&plan.users, u) {
                return;
            }
            let (Some(g), Some(u)) = (group(data, g), user(data, u)) else {
                return;
            };
            let member = data.members.get(&g).is_some_and(|s| s.contains(&u));
            if member == add {
                return;
            }
            if add {
                data.add_member(&g, &u);
            } else {
                data.remove_member(&g, &u);
            }
            touched.member_lists.insert(g);
            touched.users.insert(u);
        }
        Edge::DirectoryUser {
            directory: d,
            user: u,
        } => {
            if fetched.holders.contains_key(d) || removed(&plan.users, u) {
                return;
            }
            let (Some(d), Some(u)) = (directory(data, d), user(data, u)) else {
                return;
            };
            let set = data.directory_users.entry(d.clone()).or_default();
            let changed = if add {
                set.insert(u.clone()).is_none()
            } else {
                set.remove(&u).is_some()
            };
            if changed {
                touched.directories.insert(d);
                touched.users.insert(u);
            }
        }
        Edge::DirectoryGroup {
            directory: d,
            group: g,
        } => {
            if fetched.holders.contains_key(d) || removed(&plan.groups, g) {
                return;
            }
            let (Some(d), Some(g)) = (directory(data, d), group(data, g)) else {
                return;
            };
            let set = data.directory_groups.entry(d.clone()).or_default();
            let changed = if add {
                set.insert(g).is_none()
            } else {
                set.remove(&g).is_some()
            };
            if changed {
                touched.directories.insert(d);
            }
        }
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
