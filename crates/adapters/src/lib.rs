//! Adapters for workspace-billing: ports to outside systems and projections. Work in progress.
#![forbid(unsafe_code)]
