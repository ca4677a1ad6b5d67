//! End-to-end tests of the `billing` binary against temporary stores, as one test binary (built
//! and linked once):
//!
//! - [`flow`], [`log`], [`demo`]: the documented flow, the whole log, the demo and help, through
//!   the [`harness`];
//! - [`output`]: what people read (tables, instants, final newlines) against what `--json` keeps;
//! - [`bad_input`]: the hostile-input catalogue;
//! - [`first_open`]: many processes opening one new store at once (SQLite and PostgreSQL);
//! - [`events`]: `billing events`, the commit order as JSON Lines, and `--follow`;
//! - [`publish`]: `billing publish --nats` against a real NATS JetStream server;
//! - [`webhooks`]: `billing webhook …` and `billing deliver` against a real loopback receiver;
//! - [`golden`]: a log written before the first schema change, replayed through every read path;
//! - [`serve`]: `billing token issue` and `billing serve` over loopback;
//! - [`doors`]: one table of settlement requests through the CLI, the API and the console form,
//!   the same answer at each (both backends);
//! - [`lifecycle`]: what comes after the upgrade — `--now`, arrears, `tick`, lock, unlock,
//!   dissolve, ended subscriptions, notices.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod demo;
mod doors;
mod events;
mod first_open;
mod flow;
mod golden;
mod harness;
mod lifecycle;
mod log;
mod output;
mod publish;
mod serve;
mod webhooks;
