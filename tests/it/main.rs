//! The one integration-test binary: every test drives real sockets on 127.0.0.1 with ephemeral ports.

mod check;
mod conformance;
mod deploy;
mod emulator;
mod hardening;
mod insights;
mod insights_emulator;
mod lifecycle;
mod metrics;
mod oauth;
mod persistence;
mod provisioning;
mod read_path;
mod replicas;
mod resilience;
mod rotation;
mod status_page;
mod suite;
mod support;
