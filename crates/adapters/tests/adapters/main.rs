//! The adapters' integration tests: projections, catch-up, rebuild, the outbox and the embedded
//! outside systems, on SQLite (temporary files) and PostgreSQL (a database per test), through
//! `billing_test_support::on_both_backends!`.

#![allow(unreachable_pub, clippy::unwrap_used, missing_docs)]

mod claims;
mod harness;
mod lifecycle;
mod properties;
mod scenarios;
#[cfg(feature = "smtp")]
mod smtp;
mod webhooks;

billing_test_support::on_both_backends! {
    harness: crate::harness::Harness,
    scenarios: crate::scenarios,
    tests: [
        views_follow_every_commit,
        refused_commands_change_no_view,
        the_opening_reminder_is_recorded_and_sent_exactly_once,
        a_crash_between_commit_and_projection_is_caught_up,
        a_failed_view_update_is_retried_not_dropped,
        rebuilt_views_equal_incremental_ones,
        a_rebuild_of_many_batches_equals_the_incremental_views,
        a_rebuild_of_a_log_that_does_not_fold_changes_no_view,
        a_rebuild_keeps_what_later_migrations_added,
        a_stored_value_that_does_not_parse_is_an_integrity_error,
        the_billing_view_at_any_instant_comes_from_the_log,
        the_embedded_expense_center_verifies_and_registers,
        the_embedded_marketplace_tracks_subscriptions,
        an_imported_store_does_not_send_reminders_again,
        the_outbox_counts_only_the_reminders_it_records,
    ],
}

/// Delivery runs at the same time (SPEC §10, I14: every notice sent at most once).
mod claims_on_both {
    billing_test_support::on_both_backends! {
        harness: crate::harness::Harness,
        scenarios: crate::claims,
        tests: [
            concurrent_delivery_runs_deliver_each_notice_once,
            a_claim_of_a_run_that_died_runs_out,
        ],
    }
}
