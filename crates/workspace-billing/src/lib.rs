//! workspace-billing: the facade crate. It re-exports the domain, the stores and the adapters so a
//! host application depends on one crate.
#![forbid(unsafe_code)]

pub use billing_adapters as adapters;
pub use billing_domain as domain;
pub use billing_store as store;
