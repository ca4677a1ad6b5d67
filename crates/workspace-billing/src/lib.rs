#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]

/// The pure domain: aggregate, commands, events, rules, ports, site policy.
pub use billing_domain as domain;

/// Event stores.
pub use billing_store as store;

/// Adapters to outside systems and projections.
pub use billing_adapters as adapters;

/// The HTTP API and console: an axum router a host mounts, with its own identity provider.
pub use billing_http as http;
