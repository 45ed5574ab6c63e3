//! The seeded organisation: a pure function of the seed and the sizes.
//!
//! One `StdRng` seeded from the seed draws everything, in a fixed order, and no hash-map iteration order ever
//! reaches the output, so the same seed and sizes give the same users, groups, ids and timestamps on every
//! run. Proportions follow the recorded organisation the sizes default to (601 users): 23 users bound directly
//! to Active Directory, 241 to Google Workspace, a few more holding a directory only through a bound group.

use std::collections::{BTreeSet, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, index};
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::model::{
    Address, Attribute, DirKind, Directory, Group, GroupFields, IdGen, Mfa, Organization,
    PhoneNumber, User, UserState, iso_millis,
};
use super::store::Store;

/// First `unix_uid`/`unix_guid` handed out, as observed on the real API.
pub const FIRST_UID: u32 = 5001;
/// Users bound directly to Active Directory, per 601.
const AD_PER_601: usize = 23;
/// Users bound directly to Google Workspace, per 601.
const GSUITE_PER_601: usize = 241;
/// Start of the seeded creation times: 2019-01-01T00:00:00Z.
const EPOCH_START: i64 = 1_546_300_800;
/// Seeded creation times spread over five years, so runtime-created users (stamped now) sort after them.
const EPOCH_SPAN_MS: i64 = 5 * 365 * 24 * 3600 * 1000;

#[rustfmt::skip]
pub(super) const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily",
    "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Sharon",
    "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Amy", "Jacob", "Kathleen", "Gary", "Angela",
    "Nicholas", "Shirley", "Eric", "Brenda", "Jonathan", "Emma", "Stephen", "Anna", "Larry",
    "Pamela", "Justin", "Nicole", "Scott", "Samantha", "Brandon", "Katherine", "Priya", "Wei",
    "Aisha", "Mateo", "Sofia", "Hiroshi", "Olga", "Kwame", "Ingrid", "Rahul", "Fatima", "Lars",
    "Mei", "Diego", "Chloe", "Omar", "Zoe", "Ivan", "Leila", "Noah",
];

#[rustfmt::skip]
pub(super) const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
    "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook",
    "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "O'Brien", "Smith-Jones", "Patel", "Chen", "Kim", "Schmidt", "Müller", "Novak",
    "Kowalski", "Haddad", "Okafor", "Tanaka", "Larsen", "Silva",
];

/// (department, cost-centre code, job titles).
#[rustfmt::skip]
pub(super) const DEPARTMENTS: &[(&str, &str, &[&str])] = &[
    ("Engineering", "ENG", &["Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager", "QA Engineer"]),
    ("Sales", "SAL", &["Account Executive", "Sales Development Representative", "Sales Manager", "Solutions Consultant"]),
    ("Marketing", "MKT", &["Marketing Manager", "Content Strategist", "Product Marketing Manager", "Designer"]),
    ("Finance", "FIN", &["Accountant", "Financial Analyst", "Controller", "Payroll Specialist"]),
    ("Human Resources", "HR", &["HR Business Partner", "Recruiter", "People Operations Specialist"]),
    ("Customer Success", "CS", &["Customer Success Manager", "Support Engineer", "Support Specialist"]),
    ("Operations", "OPS", &["Operations Manager", "Office Manager", "Facilities Coordinator"]),
    ("IT", "IT", &["IT Administrator", "Systems Engineer", "Help Desk Technician", "Security Analyst"]),
    ("Legal", "LEG", &["Counsel", "Paralegal", "Compliance Officer"]),
    ("Product", "PRD", &["Product Manager", "Senior Product Manager", "UX Researcher"]),
];

/// (location, street, locality, region, postal code, country, phone area code).
#[rustfmt::skip]
pub(super) const OFFICES: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("Denver HQ", "1600 Market St", "Denver", "CO", "80202", "US", "303"),
    ("New York", "350 Fifth Ave", "New York", "NY", "10118", "US", "212"),
    ("San Francisco", "500 Howard St", "San Francisco", "CA", "94105", "US", "415"),
    ("Austin", "600 Congress Ave", "Austin", "TX", "78701", "US", "512"),
    ("London", "1 Finsbury Ave", "London", "", "EC2M 2PF", "GB", "20"),
    ("Berlin", "Friedrichstrasse 68", "Berlin", "BE", "10117", "DE", "30"),
    ("Remote", "", "", "", "", "US", "555"),
];

const EMPLOYEE_TYPES: &[(&str, f64)] = &[
    ("Full-time", 0.80),
    ("Contractor", 0.12),
    ("Part-time", 0.05),
    ("Intern", 0.03),
];

#[rustfmt::skip]
const THEMED_GROUPS: &[&str] = &[
    "VPN Users", "GitHub Admins", "On-call Rotation", "Project Apollo", "Project Zephyr",
    "Security Champions", "Denver Office", "New York Office", "London Office", "Berlin Office",
    "Managers", "Interns 2024", "Contractors", "Wiki Editors", "Release Captains",
    "Data Science Guild", "Incident Commanders", "Benefits Committee", "Hiring Panel",
    "AWS Production", "AWS Staging", "Jira Admins", "Slack Admins", "Design Reviewers",
    "Board Reporting", "Quarterly Planning", "Mentors", "Book Club", "Sustainability Team",
    "Travel Approvers", "Expense Approvers", "Laptop Refresh 2024", "Beta Testers",
    "Customer Advisory", "Partner Portal", "Legal Hold", "Audit Reviewers", "Payroll Access",
    "Kubernetes Operators", "Database Admins", "Frontend Guild", "Backend Guild", "Mobile Guild",
    "Accessibility Guild", "Localization", "Social Committee", "Wellness", "Volunteers",
    "All Hands Speakers", "Emergency Contacts",
];

/// Name of the group that holds every user.
pub const ALL_USERS: &str = "All Users";
/// A group bound to Active Directory: its members hold AD without a direct association.
pub const AD_BOUND_GROUP: &str = "AD Service Accounts";
/// A group bound to Google Workspace, likewise.
pub const GSUITE_BOUND_GROUP: &str = "Workspace Pilot";

/// Builds the seeded organisation with `users` users and `groups` groups besides "All Users".
pub fn seed(seed: u64, users: usize, groups: usize) -> Store {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids = IdGen::new(rng.random::<u64>(), rng.random::<u32>());
    let org = Organization {
        id: ids.next(EPOCH_START - 86_400),
        name: "Example Corp".into(),
        created: iso_millis(ts_ms((EPOCH_START - 86_400) * 1000)),
    };
    let mut store = Store::new(org.clone(), ids, FIRST_UID);

    let (user_ids, departments) = seed_users(&mut rng, &mut store, &org, users);
    seed_groups_and_directories(&mut rng, &mut store, &org, &user_ids, &departments, groups);
    store
}

fn ts_ms(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Lower-case ASCII letters of `s`, for usernames (`Müller` → `mller`, `O'Brien` → `obrien`).
pub(super) fn slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// (location, street, locality, region, postal code, country, phone area code): an item of [`OFFICES`].
type Office = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// Seeds `n` users; returns their ids in creation (= id) order and each one's index into `DEPARTMENTS`.
fn seed_users(
    rng: &mut StdRng,
    store: &mut Store,
    org: &Organization,
    n: usize,
) -> (Vec<String>, Vec<usize>) {
    let step_ms = EPOCH_SPAN_MS / n.max(1) as i64;
    let manager_pool = (n / 12).max(1);
    let mut taken: HashMap<String, u32> = HashMap::new();
    let mut ids: Vec<String> = Vec::with_capacity(n);
    let mut departments: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let (first, last, username) = draw_name(rng, &mut taken);
        let created_ms =
            EPOCH_START * 1000 + i as i64 * step_ms + rng.random_range(0..step_ms.max(1));
        let id = store.next_id(created_ms / 1000);
        let created = iso_millis(ts_ms(created_ms));
        let mut u = User::blank(
            id.clone(),
            created.clone(),
            org.id.clone(),
            FIRST_UID + i as u32,
        );

        let dept_index = rng.random_range(0..DEPARTMENTS.len());
        let office = OFFICES[rng.random_range(0..OFFICES.len())];
        draw_identity(rng, &mut u, first, last, username);
        draw_job(rng, &mut u, dept_index, office);
        // Managers come from the first users, and always from earlier ones: no cycles, no self.
        draw_reporting(rng, &mut u, i, &ids[..i.min(manager_pool)]);
        draw_contacts(rng, store, &mut u, office, created_ms / 1000);
        draw_account(rng, &mut u, &created);
        u.creation_source = "jumpcloud:bulk".into();
        ids.push(id);
        departments.push(dept_index);
        store.insert_user_unchecked(u);
    }
    (ids, departments)
}

/// A first and last name and a username made of them, unique among the names in `taken`.
fn draw_name(
    rng: &mut StdRng,
    taken: &mut HashMap<String, u32>,
) -> (&'static str, &'static str, String) {
    let first = *FIRST_NAMES.choose(rng).unwrap_or(&"Alex");
    let last = *LAST_NAMES.choose(rng).unwrap_or(&"Doe");
    let (f, l) = (slug(first), slug(last));
    let pattern = rng.random_range(0..10);
    let base = match pattern {
        0..7 => format!("{f}.{l}"),
        7..9 => format!("{}{l}", f.chars().next().unwrap_or('x')),
        _ => format!("{f}_{l}"),
    };
    // Bases contain no digits, so `base` + counter never collides with another base.
    let count = taken.entry(base.clone()).or_insert(0);
    *count += 1;
    let username = if *count == 1 {
        base
    } else {
        format!("{base}{count}")
    };
    (first, last, username)
}

/// Names and emails: the username, the work email made of it, sometimes a middle initial and a personal
/// alternate email.
fn draw_identity(rng: &mut StdRng, u: &mut User, first: &str, last: &str, username: String) {
    u.email = format!("{username}@example.com");
    u.firstname = first.to_owned();
    u.lastname = last.to_owned();
    if rng.random_bool(0.2) {
        u.middlename = format!("{}.", (b'A' + rng.random_range(0..26u8)) as char);
    }
    u.displayname = format!("{first} {last}");
    if rng.random_bool(0.3) {
        u.alternate_email = format!("{username}@personal.example.net");
    }
    u.username = username;
}

/// Department `dept_index`, one of its titles, its cost centre, an employee type by its share, the office.
fn draw_job(rng: &mut StdRng, u: &mut User, dept_index: usize, office: Office) {
    let (dept, cc, titles) = DEPARTMENTS[dept_index];
    u.department = dept.to_owned();
    u.job_title = (*titles.choose(rng).unwrap_or(&"Specialist")).to_owned();
    u.cost_center = format!("CC-{cc}-{:02}", rng.random_range(1..5));
    u.company = "Example Corp".into();
    let roll: f64 = rng.random();
    let mut acc = 0.0;
    u.employee_type = EMPLOYEE_TYPES
        .iter()
        .find(|(_, p)| {
            acc += p;
            roll < acc
        })
        .map_or("Full-time", |(t, _)| t)
        .to_owned();
    u.location = office.0.to_owned();
}

/// The `i`th user's employee identifier (most have one) and manager (most have one, from `managers`).
fn draw_reporting(rng: &mut StdRng, u: &mut User, i: usize, managers: &[String]) {
    if rng.random_bool(0.95) {
        u.employee_identifier = Some(format!("E{:06}", 100_000 + i));
    }
    if i > 0 && rng.random_bool(0.92) {
        u.manager = Some(managers[rng.random_range(0..managers.len())].clone());
    }
}

/// Work and mobile phones, the office's address and a badge number, each for some users; item ids are
/// stamped `secs`.
fn draw_contacts(rng: &mut StdRng, store: &mut Store, u: &mut User, office: Office, secs: i64) {
    if rng.random_bool(0.8) {
        u.phone_numbers.push(PhoneNumber {
            id: store.next_id(secs),
            kind: "work".into(),
            number: format!("+1 {} 555 {:04}", office.6, rng.random_range(0..10_000)),
        });
    }
    if rng.random_bool(0.4) {
        u.phone_numbers.push(PhoneNumber {
            id: store.next_id(secs),
            kind: "mobile".into(),
            number: format!(
                "+1 555 {:03} {:04}",
                rng.random_range(100..1000),
                rng.random_range(0..10_000)
            ),
        });
    }
    if rng.random_bool(0.7) {
        u.addresses.push(Address {
            id: store.next_id(secs),
            kind: "work".into(),
            po_box: String::new(),
            extended_address: String::new(),
            street_address: office.1.to_owned(),
            locality: office.2.to_owned(),
            region: office.3.to_owned(),
            postal_code: office.4.to_owned(),
            country: office.5.to_owned(),
        });
    }
    if rng.random_bool(0.1) {
        u.attributes.push(Attribute {
            name: "badgeNumber".into(),
            value: json!(format!("B{:05}", rng.random_range(0..100_000))),
        });
    }
}

/// State (a few STAGED or SUSPENDED), whether a password was set (on `created`), MFA, and a rare lockout.
fn draw_account(rng: &mut StdRng, u: &mut User, created: &str) {
    let state_roll: f64 = rng.random();
    u.state = if state_roll < 0.02 {
        UserState::Staged
    } else if state_roll < 0.04 {
        UserState::Suspended
    } else {
        UserState::Activated
    };
    u.suspended = u.state == UserState::Suspended;
    u.activated = match u.state {
        UserState::Staged => rng.random_bool(0.5),
        _ => !rng.random_bool(0.03),
    };
    if u.activated {
        u.password_date = Some(created.to_owned());
    }
    let mfa = rng.random_bool(0.3);
    u.mfa = Mfa {
        configured: mfa,
        ..Mfa::default()
    };
    u.totp_enabled = mfa;
    if rng.random_bool(0.01) {
        u.account_locked = true;
        u.account_locked_date = Some(created.to_owned());
        u.bad_login_attempts = 5;
    }
}

/// How many of `n` users get a direct association, rounding `n * per / 601`.
fn share(n: usize, per_601: usize) -> usize {
    (n * per_601 + 300) / 601
}

/// The two seeded directories' ids and the users bound to each directly.
struct SeededDirectories {
    ad_id: String,
    gs_id: String,
    ad_users: BTreeSet<String>,
    gs_users: BTreeSet<String>,
}

fn seed_groups_and_directories(
    rng: &mut StdRng,
    store: &mut Store,
    org: &Organization,
    user_ids: &[String],
    departments: &[usize],
    groups: usize,
) {
    let mut all = GroupFields::named(ALL_USERS);
    all.description = "Every user in the organization".into();
    let all_id = insert_group(store, org, all, user_ids.iter().cloned().collect());
    store.set_all_users_group(&all_id);

    let dirs = seed_directories(rng, store, user_ids);

    // The two directory-bound groups come last, and only once there is room for a department group too.
    let bound = groups.saturating_sub(1).min(2);
    seed_plain_groups(rng, store, org, user_ids, departments, groups - bound);
    seed_bound_groups(rng, store, org, user_ids, &dirs, bound);
}

/// Adds a seeded group, created at the start of the seeded epoch; returns its id.
fn insert_group(
    store: &mut Store,
    org: &Organization,
    fields: GroupFields,
    members: BTreeSet<String>,
) -> String {
    let id = store.next_id(EPOCH_START);
    store.insert_group_unchecked(Group {
        id: id.clone(),
        organization: org.id.clone(),
        fields,
        members,
    });
    id
}

/// Active Directory and Google Workspace, with their direct user associations.
fn seed_directories(rng: &mut StdRng, store: &mut Store, user_ids: &[String]) -> SeededDirectories {
    let n = user_ids.len();
    let made = EPOCH_START;
    let ad_id = store.next_id(made + 60);
    let gs_id = store.next_id(made + 120);
    let ad_users = sample_ids(rng, user_ids, share(n, AD_PER_601));
    let gs_users = sample_ids(rng, user_ids, share(n, GSUITE_PER_601));
    let agent = store.next_id(made + 60);
    let gs_domain_id = store.next_id(made + 120);
    store.insert_directory(Directory {
        id: ad_id.clone(),
        kind: DirKind::ActiveDirectory,
        name: "corp.example.com".into(),
        domain: "corp.example.com".into(),
        domain_id: String::new(),
        agent_id: agent,
        updated_at: iso_millis(ts_ms((made + 60) * 1000)),
        users: ad_users.clone(),
        groups: BTreeSet::new(),
    });
    store.insert_directory(Directory {
        id: gs_id.clone(),
        kind: DirKind::GSuite,
        name: "Example Corp Workspace".into(),
        domain: "example.com".into(),
        domain_id: gs_domain_id,
        agent_id: String::new(),
        updated_at: iso_millis(ts_ms((made + 120) * 1000)),
        users: gs_users.clone(),
        groups: BTreeSet::new(),
    });
    SeededDirectories {
        ad_id,
        gs_id,
        ad_users,
        gs_users,
    }
}

/// `plain` groups: one per department first, then themed ones, then numbered teams.
fn seed_plain_groups(
    rng: &mut StdRng,
    store: &mut Store,
    org: &Organization,
    user_ids: &[String],
    departments: &[usize],
    plain: usize,
) {
    let mut names_used: HashSet<String> = HashSet::new();
    names_used.insert(ALL_USERS.to_lowercase());
    for k in 0..plain {
        let fields = plain_group_fields(rng, k);
        if !names_used.insert(fields.name.to_lowercase()) {
            continue;
        }
        let members = plain_group_members(rng, k, user_ids, departments);
        insert_group(store, org, fields, members);
    }
}

/// The `k`th plain group's fields: the department's group, or a themed or numbered one.
fn plain_group_fields(rng: &mut StdRng, k: usize) -> GroupFields {
    if let Some(&(dept, code, _)) = DEPARTMENTS.get(k) {
        let mut f = GroupFields::named(dept);
        f.description = format!("Members of the {dept} department");
        f.email = format!("{}@example.com", code.to_lowercase());
        if dept == "Engineering" || dept == "IT" {
            f.attributes = Some(json!({ "sudo": { "enabled": true, "withoutPassword": false } }));
        }
        return f;
    }
    let j = k - DEPARTMENTS.len();
    let name = match THEMED_GROUPS.get(j) {
        Some(name) => (*name).to_owned(),
        None => format!("Team {:03}", j - THEMED_GROUPS.len() + 1),
    };
    let mut f = GroupFields::named(name);
    if rng.random_bool(0.5) {
        f.description = format!("{} (managed by IT)", f.name);
    }
    if rng.random_bool(0.2) {
        f.attributes =
            Some(json!({ "ldapGroups": [ { "name": slug(&f.name.replace(' ', "-")) } ] }));
    }
    f
}

/// The `k`th plain group's members: its department's users, or a sample of a drawn size.
fn plain_group_members(
    rng: &mut StdRng,
    k: usize,
    user_ids: &[String],
    departments: &[usize],
) -> BTreeSet<String> {
    if k < DEPARTMENTS.len() {
        return user_ids
            .iter()
            .zip(departments)
            .filter(|(_, d)| **d == k)
            .map(|(id, _)| id.clone())
            .collect();
    }
    let size = match rng.random_range(0..10) {
        0..4 => rng.random_range(3..=12),
        4..8 => rng.random_range(15..=80),
        _ => rng.random_range(100..=400),
    };
    sample_ids(rng, user_ids, size.min(user_ids.len()))
}

/// The first `bound` of the directory-bound groups. Their members hold a directory only through the group:
/// users without a direct association.
fn seed_bound_groups(
    rng: &mut StdRng,
    store: &mut Store,
    org: &Organization,
    user_ids: &[String],
    dirs: &SeededDirectories,
    bound: usize,
) {
    let few = (user_ids.len() / 100).clamp(2, 8);
    for (name, dir_id, direct) in [
        (AD_BOUND_GROUP, &dirs.ad_id, &dirs.ad_users),
        (GSUITE_BOUND_GROUP, &dirs.gs_id, &dirs.gs_users),
    ]
    .into_iter()
    .take(bound)
    {
        let candidates: Vec<String> = user_ids
            .iter()
            .filter(|id| !direct.contains(*id))
            .cloned()
            .collect();
        let members = sample_ids(rng, &candidates, few.min(candidates.len()));
        let mut fields = GroupFields::named(name);
        fields.description =
            format!("Bound to a directory: its members are provisioned there via {name}");
        let gid = insert_group(store, org, fields, members);
        if let Some(d) = store.directory_mut(dir_id) {
            d.groups.insert(gid);
        }
    }
}

fn sample_ids(rng: &mut StdRng, ids: &[String], amount: usize) -> BTreeSet<String> {
    index::sample(rng, ids.len(), amount.min(ids.len()))
        .into_iter()
        .map(|i| ids[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::query::Cond;

    fn dump(s: &Store) -> String {
        let users: Vec<_> = s.users().map(User::to_json).collect();
        let groups: Vec<_> = s
            .groups()
            .map(|g| (g.to_json(), g.members.iter().cloned().collect::<Vec<_>>()))
            .collect();
        let dirs: Vec<_> = s
            .directories()
            .iter()
            .map(|d| (d.summary_json(), d.users.clone(), d.groups.clone()))
            .collect();
        format!("{users:?}{groups:?}{dirs:?}")
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        assert_eq!(dump(&seed(7, 120, 12)), dump(&seed(7, 120, 12)));
        assert_ne!(dump(&seed(7, 120, 12)), dump(&seed(8, 120, 12)));
    }

    #[test]
    fn proportions_of_the_recorded_org() {
        let s = seed(1, 601, 50);
        assert_eq!(s.user_count(), 601);
        assert_eq!(s.groups().count(), 51);
        let dirs = s.directories();
        let ad = dirs
            .iter()
            .find(|d| d.kind == DirKind::ActiveDirectory)
            .unwrap();
        let gs = dirs.iter().find(|d| d.kind == DirKind::GSuite).unwrap();
        assert_eq!(ad.users.len(), 23);
        assert_eq!(gs.users.len(), 241);
        assert_eq!(ad.groups.len(), 1);
        assert_eq!(gs.groups.len(), 1);
        let all = s.groups().find(|g| g.fields.name == ALL_USERS).unwrap();
        assert_eq!(all.members.len(), 601);
        // Usernames and emails unique case-insensitively; every user valid by the create rules.
        let mut names = HashSet::new();
        for u in s.users() {
            assert!(names.insert(u.username.to_lowercase()), "{}", u.username);
            assert!(
                crate::emulator::model::username_problem(&u.username).is_none(),
                "{}",
                u.username
            );
            assert_eq!(u.suspended, u.state == UserState::Suspended);
        }
        let staged = s.users().filter(|u| u.state == UserState::Staged).count();
        let pending = s.users().filter(|u| !u.activated).count();
        assert!(staged > 0 && pending > 0);
        let (total, _) = s.query_users(&Cond::True, &[], 0, 10);
        assert_eq!(total, 601);
    }

    #[test]
    fn small_sizes_do_not_panic() {
        for (u, g) in [(0, 0), (1, 0), (1, 1), (2, 2), (3, 70)] {
            let s = seed(3, u, g);
            assert_eq!(s.user_count(), u);
        }
    }
}
