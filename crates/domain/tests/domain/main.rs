//! The domain crate's integration tests: given/when/then scenarios for every command and refusal,
//! the reference-model state machine over random command sequences, and the event shapes.

#![allow(unreachable_pub, clippy::unwrap_used)]

mod harness;
mod scenarios;
mod shapes;
mod state_machine;
