//! The users' indexes and reads: who is stored under which username, email, employee identifier and
//! manager, and the filtered, sorted pages `GET /api/systemusers` answers.
//!
//! Reads only, and the index upkeep writes call; the rules a write must pass live in `user_writes`.

use serde_json::Value;

use super::Store;
use crate::emulator::model::User;
use crate::emulator::query::{Cond, Operand, SortKey, sort_records};

// === impl Store ===

impl Store {
    pub(super) fn index_user(&mut self, u: &User) {
        self.by_username
            .insert(u.username.to_lowercase(), u.id.clone());
        self.by_email.insert(u.email.clone(), u.id.clone());
        if let Some(e) = &u.employee_identifier {
            self.by_employee_id.insert(e.clone(), u.id.clone());
        }
        if let Some(m) = &u.manager {
            self.reports
                .entry(m.clone())
                .or_default()
                .insert(u.id.clone());
        }
    }

    pub(super) fn unindex_user(&mut self, u: &User) {
        self.by_username.remove(&u.username.to_lowercase());
        self.by_email.remove(&u.email);
        if let Some(e) = &u.employee_identifier {
            self.by_employee_id.remove(e);
        }
        if let Some(m) = &u.manager {
            self.remove_report(m, &u.id);
        }
    }

    fn remove_report(&mut self, manager: &str, report: &str) {
        if let Some(set) = self.reports.get_mut(manager) {
            set.remove(report);
            if set.is_empty() {
                self.reports.remove(manager);
            }
        }
    }

    // --- users: reads ---

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    /// Every user, in id order.
    pub fn users(&self) -> impl DoubleEndedIterator<Item = &User> {
        self.users.values()
    }

    /// Users matching `cond`, sorted by `sort`, as (total matches, the page `skip..skip+limit`).
    ///
    /// Equality on `_id`/`username`/`email`/`employeeIdentifier` goes through an index; `sort=_id` (or none)
    /// walks the id-ordered map and keeps only the page; any other sort sorts references, never clones.
    pub fn query_users(
        &self,
        cond: &Cond,
        sort: &[SortKey],
        skip: usize,
        limit: usize,
    ) -> (usize, Vec<&User>) {
        if let Some(candidates) = self.index_candidates(cond) {
            let matched: Vec<&User> = candidates
                .into_iter()
                .filter(|u| cond.matches(*u))
                .collect();
            let sorted = sort_records(matched, sort);
            let total = sorted.len();
            return (total, sorted.into_iter().skip(skip).take(limit).collect());
        }
        let by_id_desc = match sort {
            [] => Some(false),
            [k] if k.field == "_id" || k.field == "id" => Some(k.desc),
            _ => None,
        };
        match by_id_desc {
            Some(desc) => {
                // Unfiltered: the page is a walk of the ordered map, concrete (not boxed) so `skip` is cheap.
                if *cond == Cond::True {
                    let page = if desc {
                        self.users.values().rev().skip(skip).take(limit).collect()
                    } else {
                        self.users.values().skip(skip).take(limit).collect()
                    };
                    return (self.users.len(), page);
                }
                let walk: Box<dyn Iterator<Item = &User>> = if desc {
                    Box::new(self.users.values().rev())
                } else {
                    Box::new(self.users.values())
                };
                let mut total = 0;
                let mut page = Vec::new();
                for u in walk.filter(|u| cond.matches(*u)) {
                    if total >= skip && page.len() < limit {
                        page.push(u);
                    }
                    total += 1;
                }
                (total, page)
            }
            None => {
                let matched: Vec<&User> =
                    self.users.values().filter(|u| cond.matches(*u)).collect();
                let sorted = sort_records(matched, sort);
                let total = sorted.len();
                (total, sorted.into_iter().skip(skip).take(limit).collect())
            }
        }
    }

    /// The users an indexed equality in `cond` narrows the search to, if there is one.
    fn index_candidates(&self, cond: &Cond) -> Option<Vec<&User>> {
        for (field, value) in cond.equalities() {
            let value = match value {
                Operand::Text(t) => t.as_str(),
                Operand::Json(Value::String(s)) => s.as_str(),
                Operand::Json(_) => continue,
            };
            let id = match field {
                "_id" | "id" => Some(value),
                "username" => self
                    .by_username
                    .get(&value.to_lowercase())
                    .map(String::as_str),
                "email" => self.by_email.get(value).map(String::as_str),
                "employeeIdentifier" => self.by_employee_id.get(value).map(String::as_str),
                _ => continue,
            };
            return Some(id.and_then(|id| self.users.get(id)).into_iter().collect());
        }
        None
    }
}
