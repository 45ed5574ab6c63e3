//! Replicas on Redis (`store.kind = "redis"`): several processes serving one directory, each from its own
//! in-memory copy of the newest published version, with what must be single shared through Redis: the
//! published versions themselves (a refresh's whole in the persisted format, a write's as a delta on the
//! version before it, [`crate::cache::persist::encode_delta`]; compressed, chunked, checksummed), one refresher (a
//! fenced lease), write locks per resource, the publish lock and version order, pinned walks, and which
//! version each replica serves (for read-your-writes).
//!
//! Rooms: `keys` names every key, `chunks` cuts a version into chunks and checks it back, `lease` is the
//! lease's pure logic, `feed` the Directory Insights cursor, `shared` the connection and scripts, `versions` publishing and loading versions,
//! `locks` locks and the lease in Redis, `sync` the background work. Must not know HTTP, SCIM or JumpCloud:
//! it moves [`Snapshot`](crate::cache::Snapshot)s between [`Store`](crate::cache::Store)s.
//!
//! The Redis client is redis-rs (`redis` crate): the maintained async client, with a `ConnectionManager`
//! that reconnects by itself after Redis comes back, pub/sub, scripts, and TLS (`rediss://`) over rustls.
//! A single Redis (or a primary with replicas behind a failover address) is expected, not Redis Cluster:
//! the scripts name keys they compute.

pub mod chunks;
mod feed;
pub mod keys;
pub mod lease;
mod locks;
mod shared;
mod sync;
mod versions;

#[cfg(test)]
mod publish_tests;

pub use locks::Held;
pub use shared::{Fence, Outcome, Shared, SharedSettings, StoreError, StoreHealth, ping};
pub use sync::Leading;
