//! Every JumpCloud route the client calls, as a method and the template that names it in traces and metrics,
//! and which association collection each directory kind uses.
//!
//! Must not know how a request is built or sent, nor what any answer holds.

use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::{JcDirectory, JcDirectoryKind};

/// A route: the method and the template that names it in traces and metrics.
#[derive(Clone, Copy)]
pub(super) struct Route {
    pub(super) method: Verb,
    pub(super) template: &'static str,
}

#[derive(Clone, Copy)]
pub(super) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

const fn route(method: Verb, template: &'static str) -> Route {
    Route { method, template }
}

pub(super) const LIST_USERS: Route = route(Verb::Get, "GET /api/systemusers");
pub(super) const GET_USER: Route = route(Verb::Get, "GET /api/systemusers/{id}");
pub(super) const CREATE_USER: Route = route(Verb::Post, "POST /api/systemusers");
pub(super) const UPDATE_USER: Route = route(Verb::Put, "PUT /api/systemusers/{id}");
pub(super) const DELETE_USER: Route = route(Verb::Delete, "DELETE /api/systemusers/{id}");
pub(super) const LIST_ORGS: Route = route(Verb::Get, "GET /api/organizations");
pub(super) const LIST_GROUPS: Route = route(Verb::Get, "GET /api/v2/usergroups");
pub(super) const GET_GROUP: Route = route(Verb::Get, "GET /api/v2/usergroups/{id}");
pub(super) const CREATE_GROUP: Route = route(Verb::Post, "POST /api/v2/usergroups");
pub(super) const PUT_GROUP: Route = route(Verb::Put, "PUT /api/v2/usergroups/{id}");
pub(super) const DELETE_GROUP: Route = route(Verb::Delete, "DELETE /api/v2/usergroups/{id}");
pub(super) const LIST_MEMBERS: Route = route(Verb::Get, "GET /api/v2/usergroups/{id}/members");
pub(super) const EDIT_MEMBERS: Route = route(Verb::Post, "POST /api/v2/usergroups/{id}/members");
pub(super) const LIST_DIRECTORIES: Route = route(Verb::Get, "GET /api/v2/directories");
/// Directory Insights: a read, though a POST (the query is its body).
pub(super) const EVENTS: Route = route(Verb::Post, "POST /insights/directory/v1/events");

/// A directory kind's association collection with its list and edit routes.
pub(super) struct AssocRoutes {
    pub(super) collection: &'static str,
    pub(super) list: Route,
    pub(super) edit: Route,
}

/// Only AD, Google Workspace and M365 directories have user/group associations; for other kinds the answer is a
/// `Protocol` error, without a call.
pub(super) fn assoc_routes(dir: &JcDirectory) -> Result<AssocRoutes, JcError> {
    let (collection, list, edit) = match dir.kind {
        JcDirectoryKind::ActiveDirectory => (
            "activedirectories",
            "GET /api/v2/activedirectories/{id}/associations",
            "POST /api/v2/activedirectories/{id}/associations",
        ),
        JcDirectoryKind::GSuite => (
            "gsuites",
            "GET /api/v2/gsuites/{id}/associations",
            "POST /api/v2/gsuites/{id}/associations",
        ),
        JcDirectoryKind::Office365 => (
            "office365s",
            "GET /api/v2/office365s/{id}/associations",
            "POST /api/v2/office365s/{id}/associations",
        ),
        JcDirectoryKind::Other(ref kind) => {
            return Err(JcError::protocol(format!(
                "directory {} of type {kind:?} has no user or group associations",
                dir.id
            )));
        }
    };
    Ok(AssocRoutes {
        collection,
        list: route(Verb::Get, list),
        edit: route(Verb::Post, edit),
    })
}
