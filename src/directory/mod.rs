//! What handlers call: reads over one snapshot version, and (with provisioning) writes carried to JumpCloud
//! and published into the snapshot.

pub mod read;
