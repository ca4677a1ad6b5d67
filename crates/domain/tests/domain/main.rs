//! The domain crate's integration tests: given/when/then scenarios for every command and refusal
//! (the upgrade flow in `scenarios`, the standing of SPEC §10 in `standing` and
//! `standing_replay`), the authorization property, the reference-model state machine over random
//! command sequences, the ports' and values' edges, and the event shapes.

#![allow(unreachable_pub, clippy::unwrap_used)]

mod authorization;
mod edges;
mod harness;
mod scenarios;
mod shapes;
mod standing;
mod standing_policy;
mod standing_replay;
mod state_machine;
mod state_machine_model;
