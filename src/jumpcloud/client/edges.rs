//! Graph edges (group members, directory associations): which change to make ([`EdgeOp`]) and what a write did
//! ([`EdgeOutcome`]), with the one rule that reads JumpCloud's answer to an edge write.
//!
//! Must not know which edges exist or how they are sent.

use super::transport::Reply;
use crate::jumpcloud::error::JcError;

/// A graph edge change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeOp {
    Add,
    Remove,
}

impl EdgeOp {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EdgeOp::Add => "add",
            EdgeOp::Remove => "remove",
        }
    }
}

/// What a graph write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeOutcome {
    /// JumpCloud made the change.
    Applied,
    /// The edge was already there (an add answered "Already Exists").
    AlreadyInState,
}

/// Graph writes answer 204. Adding an edge that exists answers `{"message":"Already Exists"}` — most likely with
/// 409, but the status is not documented, so a 400 saying the same is read the same way.
pub(super) fn edge_outcome(
    op: EdgeOp,
    result: Result<Reply, JcError>,
) -> Result<EdgeOutcome, JcError> {
    match result {
        Ok(_) => Ok(EdgeOutcome::Applied),
        Err(JcError::Conflict { .. }) if op == EdgeOp::Add => Ok(EdgeOutcome::AlreadyInState),
        Err(JcError::Rejected { message, .. })
            if op == EdgeOp::Add && message.to_ascii_lowercase().contains("already exists") =>
        {
            Ok(EdgeOutcome::AlreadyInState)
        }
        Err(e) => Err(e),
    }
}
