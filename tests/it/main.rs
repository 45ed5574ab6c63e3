//! The one integration-test binary: every test drives real sockets on 127.0.0.1 with ephemeral ports.

mod conformance;
mod deploy;
mod emulator;
mod hardening;
mod lifecycle;
mod metrics;
mod oauth;
mod persistence;
mod provisioning;
mod read_path;
mod resilience;
mod suite;
mod support;
