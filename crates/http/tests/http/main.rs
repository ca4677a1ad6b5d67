//! The JSON API of billing-http over real HTTP: the router served on a loopback port, spoken to
//! with reqwest.

#![allow(unreachable_pub, missing_docs)]

mod api;
mod feed;
mod harness;
mod injection;
mod openapi;
mod problems;
mod security;
mod unavailable;

billing_test_support::on_both_backends! {
    harness: crate::harness::Harness,
    scenarios: crate::api,
    tests: [
        the_documented_flow_binds_an_account_and_settles_through_aws,
        registering_a_new_account_binds_it,
        steps_out_of_order_are_refused,
        a_post_is_idempotent_by_its_key,
        if_match_guards_a_command_with_the_etag,
    ],
}
