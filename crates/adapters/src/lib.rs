//! Adapters for workspace-billing: what sits between the pure domain and store and the outside
//! world.
//!
//! - [`views`] and [`view_store`]: the billing view and the audit trail (SPEC §6), stored in the
//!   store's database, rebuilt from the log at any time; [`billing_view_at`] as of any instant.
//! - [`Projector`]: keeps the views and the outbox up to date as commands commit, and catches up
//!   from the log after any interruption.
//! - [`outbox`]: the opening reminder e-mail, once per upgrade, and the notices of a commercial
//!   workspace's standing (countdown started, reminder, locked, unlocked, settlement fallen
//!   back), each once; [`LogMailer`] by default, `outbox::smtp::SmtpMailer` with the `smtp`
//!   feature.
//! - [`Scheduler`]: fires the countdowns' reminders and locks when they fall due (SPEC §10),
//!   exactly once however many ticks run.
//! - [`webhooks`]: committed events POSTed to the host's endpoints, signed the Standard Webhooks
//!   way, in order per workspace, retried for up to 72 hours, then dead letters.
//! - [`EmbeddedExpenseCenter`] and [`EmbeddedMarketplace`]: stand-ins for the outside systems,
//!   in the same database.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clocks;
mod embedded;
mod error;
mod expense_center;
mod marketplace;
mod notices;
pub mod outbox;
mod projector;
mod scheduler;
pub mod view_store;
pub mod views;
pub mod webhooks;

pub use clocks::Clocks;
pub use embedded::Embedded;
pub use error::AdapterError;
pub use expense_center::EmbeddedExpenseCenter;
pub use marketplace::EmbeddedMarketplace;
pub use outbox::{deliver_pending, LogMailer, Mailer, OutboxMessage};
pub use projector::{catch_up, workspaces_settling_through, Projector};
pub use scheduler::{
    command_id as deadline_command_id, Scheduler, TickReport, BILLING_SYSTEM_ACTOR,
};
pub use view_store::{RebuildReport, ViewUpdate, VIEWS_SUBSCRIPTION};
pub use views::{billing_view_at, AuditEntry, BillingView};
