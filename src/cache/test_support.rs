//! Fixtures the cache's unit tests share: the build options they use, times, and a plain build.

use jiff::{Timestamp, ToSpan};

use super::{BuildOptions, Data, RawDirectory, Snapshot};
use crate::jumpcloud::JcGroup;
use crate::mapping::MappingOptions;

pub fn opts() -> BuildOptions {
    BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    }
}

/// `secs` seconds after the epoch.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + secs.seconds()
}

/// A full build of `raw` taken and stamped at `now`, sharing what it can with `prev`.
pub fn build(raw: RawDirectory, version: u64, now: Timestamp, prev: Option<&Snapshot>) -> Snapshot {
    Snapshot::build(
        Data::from_raw(raw),
        version,
        now,
        now,
        &opts(),
        prev,
        &|_, _| None,
    )
}

/// A user group with `id` and `name`, nothing else set.
pub fn group(id: &str, name: &str) -> JcGroup {
    JcGroup {
        id: id.into(),
        name: name.into(),
        ..JcGroup::default()
    }
}
