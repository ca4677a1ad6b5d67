//! Given/when/then: every command's success and every refusal of SPEC §2–§4.

use billing_domain::*;
use chrono::Duration;

use crate::harness::*;

// ---- successes -------------------------------------------------------------------------------

#[test]
fn requesting_the_upgrade_records_the_site() {
    let world = World::new();
    let state = world
        .given(vec![])
        .when_owner(act::request("cn1"))
        .then_events(vec![ev::requested("cn1", world.now())]);
    assert_eq!(state.upgrade_step(), UpgradeStep::Requested);
    assert_eq!(state.site(), Some(&site("cn1")));
    assert_eq!(state.plan(), Plan::Experience);
}

#[test]
fn binding_a_verified_user_name_binds_it() {
    let world = World::new();
    let now = world.now();
    let state = world
        .given(vec![ev::requested("cn1", now)])
        .when_owner(act::bind(KNOWN_USER))
        .then_events(vec![ev::bound(KNOWN_USER, "ec-000001", now)]);
    assert_eq!(state.bound_account().unwrap().user_name, user(KNOWN_USER));
    assert_eq!(state.plan(), Plan::Experience);
}

#[test]
fn registering_a_new_account_binds_it_in_the_same_step() {
    let world = World::new();
    let now = world.now();
    assert!(!world.expense_center.contains(&user("new-finance")));
    let events = world
        .given(vec![ev::requested("cn2", now)])
        .when_owner(act::register("new-finance"))
        .result
        .unwrap();
    assert_eq!(events.len(), 1);
    let WorkspaceEvent::AccountBound(bound) = &events[0] else {
        panic!("expected AccountBound, got {events:?}")
    };
    assert_eq!(bound.user_name, user("new-finance"));
    assert!(bound.newly_registered);
    assert!(world.expense_center.contains(&user("new-finance")));
}

#[test]
fn accepting_the_agreement_upgrades_in_the_same_command() {
    let world = World::new();
    let at = t("2026-11-01T00:00:00Z");
    let now = world.now();
    let state = world
        .given(vec![
            ev::requested("us1", at),
            ev::bound(KNOWN_USER, "ec-000001", at),
        ])
        .when_owner(act::accept("2024-06"))
        .then_events(vec![
            ev::accepted("2024-06", now),
            ev::upgraded("us1", KNOWN_USER, "2024-06", now),
        ]);
    assert_eq!(state.plan(), Plan::Commercial);
    assert_eq!(state.upgraded_at(), Some(now));
    assert_eq!(
        state.data_visible_from(),
        Some(now),
        "Experience data is no longer viewable"
    );
    assert_eq!(state.settlement(), Some(&enterprise(KNOWN_USER)));
    assert_eq!(
        state.settlement_changes(),
        0,
        "the default does not count as a change"
    );
}

#[test]
fn changing_to_a_subscribed_cloud_account_records_from_and_to() {
    let world = World::new();
    world
        .marketplace
        .subscribe(&method("aws"), &cloud("123456789012", None));
    let upgraded = ev::upgrade("us1", t("2026-11-01T00:00:00Z"));
    let state = world
        .given(upgraded)
        .when_owner(act::settle("aws", Some(cloud("123456789012", None))))
        .then_events(vec![ev::changed(
            enterprise(KNOWN_USER),
            aws("123456789012"),
            world.now(),
        )]);
    assert_eq!(state.settlement(), Some(&aws("123456789012")));
    assert_eq!(state.settlement_changes(), 1);
}

#[test]
fn alibaba_cloud_needs_uid_and_instance_on_cn1() {
    let world = World::new();
    let account = cloud("1688000012345678", Some("i-ali-1"));
    world
        .marketplace
        .subscribe(&method("alibaba-cloud"), &account);
    let state = world
        .given(ev::upgrade("cn1", t("2026-10-01T00:00:00Z")))
        .when_owner(act::settle("alibaba-cloud", Some(account.clone())))
        .then_events(vec![ev::changed(
            enterprise(KNOWN_USER),
            Settlement::Cloud {
                method: method("alibaba-cloud"),
                account,
            },
            world.now(),
        )]);
    assert_eq!(
        state.settlement().unwrap().method(),
        method("alibaba-cloud")
    );
}

#[test]
fn back_to_enterprise_once_the_cloud_subscription_ended_and_a_month_passed() {
    let world = World::new();
    let mut given = ev::upgrade("eu1", t("2026-09-01T00:00:00Z"));
    given.push(ev::changed(
        enterprise(KNOWN_USER),
        aws("123456789012"),
        t("2026-10-15T00:00:00Z"),
    ));
    // Subscription not active (never subscribed in this world): no lock-in.
    world
        .given(given)
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![ev::changed(
            aws("123456789012"),
            enterprise(KNOWN_USER),
            world.now(),
        )]);
}

#[test]
fn a_change_is_allowed_from_the_first_instant_of_the_next_month_in_the_site_zone() {
    let world = World::new();
    let mut given = ev::upgrade("us1", t("2026-09-01T00:00:00Z"));
    // 2026-10-31T23:00 in Los Angeles (UTC-7) is 2026-11-01T06:00Z.
    given.push(ev::changed(
        enterprise(KNOWN_USER),
        aws("123456789012"),
        t("2026-11-01T06:00:00Z"),
    ));
    // November starts in Los Angeles at 2026-11-01T07:00Z (still PDT, UTC-7).
    world.clock.set(t("2026-11-01T07:00:00Z"));
    world
        .given(given)
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![ev::changed(
            aws("123456789012"),
            enterprise(KNOWN_USER),
            t("2026-11-01T07:00:00Z"),
        )]);
}

// ---- refusals --------------------------------------------------------------------------------

fn every_action() -> Vec<Action> {
    vec![
        act::request("cn1"),
        act::bind(KNOWN_USER),
        act::register("someone-new"),
        act::accept("2024-06"),
        act::settle("enterprise", None),
    ]
}

#[test]
fn only_the_owner_may_run_any_command() {
    let world = World::new();
    let now = world.now();
    let histories = [
        vec![],
        vec![ev::requested("cn1", now)],
        vec![
            ev::requested("cn1", now),
            ev::bound(KNOWN_USER, "ec-000001", now),
        ],
        ev::upgrade("cn1", now),
    ];
    for history in histories {
        for role in [Role::Admin, Role::Member] {
            for action in every_action() {
                let err = world
                    .given(history.clone())
                    .when(role, action.clone())
                    .then_refused("not-workspace-owner");
                assert!(err.to_string().contains(role.as_str()), "{err}");
            }
        }
    }
    assert!(
        !world.expense_center.contains(&user("someone-new")),
        "nothing registered"
    );
}

#[test]
fn requesting_twice_is_refused() {
    let world = World::new();
    let err = world
        .given(vec![ev::requested("cn1", world.now())])
        .when_owner(act::request("cn2"))
        .then_refused("upgrade-already-requested");
    assert!(err.to_string().contains("cn1"), "{err}");
}

#[test]
fn an_unknown_site_is_refused() {
    let world = World::new();
    let err = world
        .given(vec![])
        .when_owner(act::request("mars1"))
        .then_refused("unknown-site");
    assert!(err.to_string().contains("mars1"), "{err}");
}

#[test]
fn every_upgrade_step_on_a_commercial_workspace_is_refused() {
    let world = World::new();
    for action in [
        act::request("cn1"),
        act::bind(KNOWN_USER),
        act::register("someone-new"),
        act::accept("2024-06"),
    ] {
        world
            .given(ev::upgrade("cn1", world.now()))
            .when_owner(action)
            .then_refused("already-commercial");
    }
    assert!(!world.expense_center.contains(&user("someone-new")));
}

#[test]
fn binding_or_accepting_before_the_request_is_refused() {
    let world = World::new();
    for action in [
        act::bind(KNOWN_USER),
        act::register("someone-new"),
        act::accept("2024-06"),
    ] {
        world
            .given(vec![])
            .when_owner(action)
            .then_refused("upgrade-not-requested");
    }
}

#[test]
fn binding_an_unknown_user_name_is_refused() {
    let world = World::new();
    let err = world
        .given(vec![ev::requested("cn1", world.now())])
        .when_owner(act::bind("nobody-here"))
        .then_refused("unknown-user-name");
    assert!(err.to_string().contains("nobody-here"), "{err}");
}

#[test]
fn registering_a_taken_user_name_is_refused() {
    let world = World::new();
    let err = world
        .given(vec![ev::requested("cn1", world.now())])
        .when_owner(act::register(KNOWN_USER))
        .then_refused("user-name-taken");
    assert!(err.to_string().contains(KNOWN_USER), "{err}");
}

#[test]
fn accepting_before_binding_is_refused() {
    let world = World::new();
    world
        .given(vec![ev::requested("cn1", world.now())])
        .when_owner(act::accept("2024-06"))
        .then_refused("account-not-bound");
}

#[test]
fn a_bound_user_name_never_changes() {
    let world = World::new();
    world.expense_center.add(&user("globex"));
    let now = world.now();
    let bound = vec![
        ev::requested("cn1", now),
        ev::bound(KNOWN_USER, "ec-000001", now),
    ];
    for action in [
        act::bind("globex"),
        act::register("someone-new"),
        act::bind(KNOWN_USER),
    ] {
        let err = world
            .given(bound.clone())
            .when_owner(action)
            .then_refused("account-already-bound");
        assert!(err.to_string().contains(KNOWN_USER), "{err}");
    }
}

#[test]
fn settlement_before_the_upgrade_is_refused() {
    let world = World::new();
    let now = world.now();
    for history in [
        vec![],
        vec![ev::requested("cn1", now)],
        vec![
            ev::requested("cn1", now),
            ev::bound(KNOWN_USER, "ec-000001", now),
        ],
    ] {
        world
            .given(history)
            .when_owner(act::settle("enterprise", None))
            .then_refused("not-commercial-yet");
    }
}

#[test]
fn a_method_the_site_does_not_allow_is_refused_naming_the_allowed_ones() {
    let world = World::new();
    world
        .marketplace
        .subscribe(&method("aws"), &cloud("123456789012", None));
    let err = world
        .given(ev::upgrade("cn1", world.now()))
        .when_owner(act::settle("aws", Some(cloud("123456789012", None))))
        .then_refused("settlement-not-allowed-on-site");
    assert_eq!(
        err.to_string(),
        "settlement-not-allowed-on-site: settlement method aws is not allowed on site cn1 (allowed: enterprise, alibaba-cloud)"
    );
    // cn4 (Huawei Cloud) settles through the Expense Center only.
    for (m, account) in [
        ("aws", cloud("123456789012", None)),
        ("alibaba-cloud", cloud("1688", Some("i-1"))),
    ] {
        world
            .given(ev::upgrade("cn4", world.now()))
            .when_owner(act::settle(m, Some(account)))
            .then_refused("settlement-not-allowed-on-site");
    }
    world
        .given(ev::upgrade("us1", world.now()))
        .when_owner(act::settle("paypal", None))
        .then_refused("settlement-not-allowed-on-site");
}

fn instance_only(m: &str) -> Action {
    Action::ChangeSettlement(SettlementRequest::new(
        method(m),
        None,
        Some(ExternalId::parse("i-1").unwrap()),
    ))
}

#[test]
fn a_request_that_does_not_fit_its_method_is_bad_input() {
    let world = World::new();
    let cases = [
        (
            "cn1",
            act::settle("alibaba-cloud", Some(cloud("1688", None))),
        ),
        ("cn1", act::settle("alibaba-cloud", None)),
        ("us1", act::settle("aws", Some(cloud("1234", Some("i-1"))))),
        ("us1", act::settle("enterprise", Some(cloud("1234", None)))),
        // An instance id given without an account, as a door hands it over when its user typed
        // one: the rules refuse it, whatever the method.
        ("us1", instance_only("enterprise")),
        ("us1", instance_only("aws")),
        ("cn1", instance_only("alibaba-cloud")),
    ];
    for (s, action) in cases {
        let err = world
            .given(ev::upgrade(s, world.now()))
            .when_owner(action)
            .then_refused("invalid-settlement-request");
        assert!(err.is_bad_input());
    }
}

#[test]
fn choosing_the_current_settlement_is_refused() {
    let world = World::new();
    world
        .given(ev::upgrade("us1", world.now()))
        .when_owner(act::settle("enterprise", None))
        .then_refused("settlement-unchanged");
}

#[test]
fn a_second_change_in_the_same_calendar_month_is_refused_with_the_next_allowed_instant() {
    let world = World::new();
    let mut given = ev::upgrade("cn2", t("2026-10-01T00:00:00Z"));
    // 2026-11-01T00:00 Shanghai is 2026-10-31T16:00Z: this change is in November there.
    given.push(ev::changed(
        enterprise(KNOWN_USER),
        aws("123456789012"),
        t("2026-10-31T16:00:00Z"),
    ));
    world.clock.set(t("2026-11-30T15:59:59Z")); // still November in Shanghai
    let err = world
        .given(given.clone())
        .when_owner(act::settle("enterprise", None))
        .then_refused("settlement-change-too-soon");
    let DomainError::SettlementChangeTooSoon {
        next_allowed_at, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*next_allowed_at, t("2026-11-30T16:00:00Z"));
    assert!(err.to_string().contains("2026-11-30 16:00:00 UTC"), "{err}");
    assert!(err.to_string().contains("Asia/Shanghai"), "{err}");
    // One second later it is December in Shanghai.
    world.clock.advance(Duration::seconds(1));
    world
        .given(given)
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![ev::changed(
            aws("123456789012"),
            enterprise(KNOWN_USER),
            t("2026-11-30T16:00:00Z"),
        )]);
}

#[test]
fn leaving_an_active_cloud_subscription_is_refused() {
    let world = World::new();
    world
        .marketplace
        .subscribe(&method("aws"), &cloud("123456789012", None));
    world
        .marketplace
        .subscribe(&method("aws"), &cloud("210987654321", None));
    let mut given = ev::upgrade("us1", t("2026-09-01T00:00:00Z"));
    given.push(ev::changed(
        enterprise(KNOWN_USER),
        aws("123456789012"),
        t("2026-10-01T00:00:00Z"),
    ));
    for action in [
        act::settle("enterprise", None),
        act::settle("aws", Some(cloud("210987654321", None))),
    ] {
        let err = world
            .given(given.clone())
            .when_owner(action)
            .then_refused("cloud-settlement-locked-in");
        assert!(err.to_string().contains("123456789012"), "{err}");
    }
    world
        .marketplace
        .unsubscribe(&method("aws"), &cloud("123456789012", None));
    world
        .given(given)
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![ev::changed(
            aws("123456789012"),
            enterprise(KNOWN_USER),
            world.now(),
        )]);
}

#[test]
fn an_unsubscribed_cloud_account_cannot_be_chosen() {
    let world = World::new();
    let err = world
        .given(ev::upgrade("ap1", world.now()))
        .when_owner(act::settle("aws", Some(cloud("123456789012", None))))
        .then_refused("cloud-account-not-subscribed");
    assert!(err.to_string().contains("123456789012"), "{err}");
}

#[test]
fn decide_refuses_facts_gathered_for_another_command() {
    let world = World::new();
    let state = Workspace::replay(&[ev::requested("cn1", world.now())]).unwrap();
    let owner = Actor::new(actor_id("alice"), Role::Owner);
    let policy = SitePolicy::builtin();
    let known = WorkspaceCommand::new(
        ExternalId::parse("c1").unwrap(),
        owner.clone(),
        act::bind(KNOWN_USER),
    );
    let lookup = plan(&state, &known, &policy, world.now()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let facts = rt.block_on(gather(lookup, &world.services)).unwrap();
    // Facts verified for acme-finance cannot bind another name.
    let other = WorkspaceCommand::new(
        ExternalId::parse("c2").unwrap(),
        owner,
        act::bind("nobody-here"),
    );
    let err = decide(&state, &other, &policy, world.now(), &facts).unwrap_err();
    assert_eq!(err.code(), "verification-missing");
    // And they do decide the command they were gathered for.
    assert!(decide(&state, &known, &policy, world.now(), &facts).is_ok());
}

// ---- histories the rules refuse (I1, I2) ------------------------------------------------------

#[test]
fn replay_refuses_a_second_upgrade_or_any_step_after_it() {
    let at = t("2026-11-01T00:00:00Z");
    let upgraded = ev::upgrade("cn1", at);
    for extra in [
        ev::upgraded("cn1", KNOWN_USER, "2024-06", at),
        ev::requested("cn1", at),
        ev::bound(KNOWN_USER, "ec-000001", at),
        ev::accepted("2024-06", at),
    ] {
        let mut log = upgraded.clone();
        log.push(extra);
        let err = Workspace::replay(&log).unwrap_err();
        assert_eq!(err.code(), "invalid-transition", "{err}");
    }
}

#[test]
fn replay_refuses_an_upgrade_out_of_order() {
    let at = t("2026-11-01T00:00:00Z");
    let logs = [
        vec![ev::upgraded("cn1", KNOWN_USER, "2024-06", at)],
        vec![
            ev::requested("cn1", at),
            ev::upgraded("cn1", KNOWN_USER, "2024-06", at),
        ],
        vec![
            ev::requested("cn1", at),
            ev::bound(KNOWN_USER, "ec-000001", at),
            ev::upgraded("cn1", KNOWN_USER, "2024-06", at),
        ],
        // AgreementAccepted must be followed directly by PlanUpgraded.
        vec![
            ev::requested("cn1", at),
            ev::bound(KNOWN_USER, "ec-000001", at),
            ev::accepted("2024-06", at),
            ev::changed(enterprise(KNOWN_USER), aws("1"), at),
        ],
        // PlanUpgraded must match the history it follows.
        vec![
            ev::requested("cn1", at),
            ev::bound(KNOWN_USER, "ec-000001", at),
            ev::accepted("2024-06", at),
            ev::upgraded("cn2", KNOWN_USER, "2024-06", at),
        ],
        vec![
            ev::requested("cn1", at),
            ev::bound(KNOWN_USER, "ec-000001", at),
            ev::accepted("2024-06", at),
            ev::upgraded("cn1", "globex", "2024-06", at),
        ],
        vec![ev::bound(KNOWN_USER, "ec-000001", at)],
        vec![ev::changed(enterprise(KNOWN_USER), aws("1"), at)],
    ];
    for log in logs {
        assert_eq!(
            Workspace::replay(&log).unwrap_err().code(),
            "invalid-transition",
            "{log:?}"
        );
    }
}

#[test]
fn replay_refuses_a_settlement_change_that_does_not_start_from_the_current_one() {
    let at = t("2026-11-01T00:00:00Z");
    let mut log = ev::upgrade("us1", at);
    log.push(ev::changed(aws("1"), enterprise(KNOWN_USER), at));
    assert_eq!(
        Workspace::replay(&log).unwrap_err().code(),
        "invalid-transition"
    );
    let mut log = ev::upgrade("us1", at);
    log.push(ev::changed(
        enterprise(KNOWN_USER),
        enterprise("globex"),
        at,
    ));
    assert_eq!(
        Workspace::replay(&log).unwrap_err().code(),
        "invalid-transition"
    );
}

#[test]
fn check_policy_flags_histories_the_site_rules_refuse() {
    let policy = SitePolicy::builtin();
    let at = t("2026-11-05T00:00:00Z");
    let state = Workspace::replay(&ev::upgrade("cn1", at)).unwrap();
    let to_aws = ev::changed(enterprise(KNOWN_USER), aws("1"), at);
    assert_eq!(
        state.check_policy(&to_aws, &policy).unwrap_err().code(),
        "settlement-not-allowed-on-site"
    );
    let state = Workspace::replay(&ev::upgrade("us1", at)).unwrap();
    let first = ev::changed(enterprise(KNOWN_USER), aws("1"), at);
    state.check_policy(&first, &policy).unwrap();
    let state = state.evolve(&first).unwrap();
    let second = ev::changed(aws("1"), enterprise(KNOWN_USER), at + Duration::days(2));
    assert_eq!(
        state.check_policy(&second, &policy).unwrap_err().code(),
        "settlement-change-too-soon"
    );
    assert_eq!(
        Workspace::default()
            .check_policy(&ev::requested("zz9", at), &policy)
            .unwrap_err()
            .code(),
        "unknown-site"
    );
}

// ---- the cqrs-es adapter ---------------------------------------------------------------------

#[test]
fn the_cqrs_es_aggregate_runs_the_same_rules() {
    use cqrs_es::test::TestFramework;
    let world = World::new();
    let now = world.now();
    let owner = Actor::new(actor_id("alice"), Role::Owner);
    let command =
        |action| WorkspaceCommand::new(ExternalId::parse("c1").unwrap(), owner.clone(), action);
    TestFramework::<Workspace>::with(world.services.clone())
        .given(vec![
            ev::requested("us1", now),
            ev::bound(KNOWN_USER, "ec-000001", now),
        ])
        .when(command(act::accept("2024-06")))
        .then_expect_events(vec![
            ev::accepted("2024-06", now),
            ev::upgraded("us1", KNOWN_USER, "2024-06", now),
        ]);
    TestFramework::<Workspace>::with(world.services.clone())
        .given(ev::upgrade("us1", now))
        .when(command(act::request("us1")))
        .then_expect_error(DomainError::AlreadyCommercial { upgraded_at: now });
}

#[test]
fn the_cqrs_es_apply_never_turns_a_commercial_workspace_back() {
    use cqrs_es::Aggregate;
    let at = t("2026-11-01T00:00:00Z");
    let mut state = Workspace::replay(&ev::upgrade("cn1", at)).unwrap();
    let before = state.clone();
    for event in [
        ev::requested("cn1", at),
        ev::upgraded("cn1", KNOWN_USER, "2024-06", at),
    ] {
        state.apply(event);
        assert_eq!(state, before);
        assert_eq!(state.plan(), Plan::Commercial);
    }
}
