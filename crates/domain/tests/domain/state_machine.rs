//! A reference-model state machine test: random sequences of commands (random actors, roles,
//! sites, user names known and unknown, settlement requests), clock jumps and marketplace changes
//! run against the real aggregate and ports, and against a small independent model of SPEC §2.
//! After every step the outcomes must agree and invariants I1–I8 must hold.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use billing_domain::*;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use crate::harness::{user, World};

static POLICY: LazyLock<SitePolicy> = LazyLock::new(SitePolicy::builtin);

const SITES: [&str; 8] = ["cn1", "cn2", "cn4", "us1", "cn6", "eu1", "ap1", "zz9"];
const USERS: [&str; 5] = ["acme-finance", "globex", "initech", "nobody-1", "nobody-2"];
const PRESEEDED: [&str; 3] = ["acme-finance", "globex", "initech"];
const METHODS: [&str; 4] = ["enterprise", "aws", "alibaba-cloud", "paypal"];

/// The model's own copy of the site table (written independently of `sites.json`).
fn model_site(site: &str) -> Option<(&'static [&'static str], Tz)> {
    use chrono_tz::{America, Asia, Europe};
    const ALI: &[&str] = &["enterprise", "alibaba-cloud"];
    const AWS: &[&str] = &["enterprise", "aws"];
    const EC: &[&str] = &["enterprise"];
    Some(match site {
        "cn1" => (ALI, Asia::Shanghai),
        "cn2" => (AWS, Asia::Shanghai),
        "cn4" => (EC, Asia::Shanghai),
        "us1" => (AWS, America::Los_Angeles),
        "cn6" => (ALI, Asia::Hong_Kong),
        "eu1" => (AWS, Europe::Berlin),
        "ap1" => (AWS, Asia::Singapore),
        _ => return None,
    })
}

fn aws_accounts() -> Vec<CloudAccount> {
    ["111111111111", "222222222222"]
        .iter()
        .map(|a| CloudAccount {
            account_id: ExternalId::parse(a).unwrap(),
            instance_id: None,
        })
        .collect()
}

fn ali_accounts() -> Vec<CloudAccount> {
    [("1688001", "i-1"), ("1688002", "i-2")]
        .iter()
        .map(|(a, i)| CloudAccount {
            account_id: ExternalId::parse(a).unwrap(),
            instance_id: Some(ExternalId::parse(i).unwrap()),
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Step {
    Command {
        role: Role,
        action: Action,
    },
    Advance {
        seconds: i64,
    },
    Subscribe {
        method: MethodId,
        account: CloudAccount,
    },
    Unsubscribe {
        method: MethodId,
        account: CloudAccount,
    },
    AccountCreatedElsewhere {
        user_name: UserName,
    },
}

#[derive(Clone, Debug)]
struct Model {
    now: DateTime<Utc>,
    site: Option<String>,
    bound: Option<UserName>,
    commercial: bool,
    /// (method, cloud account) once commercial.
    settlement: Option<(String, Option<CloudAccount>)>,
    last_change: Option<DateTime<Utc>>,
    directory: BTreeSet<UserName>,
    subscriptions: BTreeSet<(String, CloudAccount)>,
    /// What the last step should have produced: a number of events or a refusal code.
    expected: Option<Result<usize, &'static str>>,
}

fn year_month(t: DateTime<Utc>, tz: Tz) -> i32 {
    let local = t.with_timezone(&tz);
    local.year() * 12 + local.month() as i32
}

impl Model {
    fn decide(&self, role: Role, action: &Action) -> Result<Model, &'static str> {
        if role != Role::Owner {
            return Err("not-workspace-owner");
        }
        let mut next = self.clone();
        match action {
            Action::RequestUpgrade { site } => {
                if self.commercial {
                    return Err("already-commercial");
                }
                if self.site.is_some() {
                    return Err("upgrade-already-requested");
                }
                if model_site(site.as_str()).is_none() {
                    return Err("unknown-site");
                }
                next.site = Some(site.as_str().to_owned());
            }
            Action::BindAccount { user_name }
            | Action::RegisterAndBindAccount { user_name, .. } => {
                if self.commercial {
                    return Err("already-commercial");
                }
                if self.site.is_none() {
                    return Err("upgrade-not-requested");
                }
                if self.bound.is_some() {
                    return Err("account-already-bound");
                }
                let known = self.directory.contains(user_name);
                match action {
                    Action::BindAccount { .. } if !known => return Err("unknown-user-name"),
                    Action::RegisterAndBindAccount { .. } if known => {
                        return Err("user-name-taken")
                    }
                    _ => {}
                }
                next.directory.insert(user_name.clone());
                next.bound = Some(user_name.clone());
            }
            Action::AcceptAgreement { .. } => {
                if self.commercial {
                    return Err("already-commercial");
                }
                if self.site.is_none() {
                    return Err("upgrade-not-requested");
                }
                if self.bound.is_none() {
                    return Err("account-not-bound");
                }
                next.commercial = true;
                next.settlement = Some(("enterprise".into(), None));
            }
            Action::ChangeSettlement { method, account } => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                let site = self.site.as_deref().unwrap_or_default();
                let (allowed, tz) = model_site(site).ok_or("unknown-site")?;
                let m = method.as_str();
                if !allowed.contains(&m) {
                    return Err("settlement-not-allowed-on-site");
                }
                let shape_ok = match (m, account) {
                    ("enterprise", None) => true,
                    ("aws", Some(a)) => a.instance_id.is_none(),
                    ("alibaba-cloud", Some(a)) => a.instance_id.is_some(),
                    _ => false,
                };
                if !shape_ok {
                    return Err("invalid-settlement-request");
                }
                let target = (m.to_owned(), account.clone());
                let current = self.settlement.clone().unwrap_or_default();
                if target == current {
                    return Err("settlement-unchanged");
                }
                if let Some(last) = self.last_change {
                    if year_month(self.now, tz) <= year_month(last, tz) {
                        return Err("settlement-change-too-soon");
                    }
                }
                if let (cm, Some(ca)) = &current {
                    if self.subscriptions.contains(&(cm.clone(), ca.clone())) {
                        return Err("cloud-settlement-locked-in");
                    }
                }
                if let Some(a) = account {
                    if !self.subscriptions.contains(&(m.to_owned(), a.clone())) {
                        return Err("cloud-account-not-subscribed");
                    }
                }
                next.settlement = Some(target);
                next.last_change = Some(self.now);
            }
        }
        Ok(next)
    }
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![6 => Just(Role::Owner), 1 => Just(Role::Admin), 1 => Just(Role::Member)]
}

fn any_user_name() -> impl Strategy<Value = UserName> {
    proptest::sample::select(USERS.to_vec()).prop_map(user)
}

/// A settlement change: mostly one that fits the site's methods, sometimes anything at all.
fn settlement_request(site: Option<&str>) -> impl Strategy<Value = Action> {
    let allowed = site
        .and_then(model_site)
        .map_or(&["enterprise"][..], |(m, _)| m);
    let fitting: Vec<(&'static str, Option<CloudAccount>)> = allowed
        .iter()
        .flat_map(|m| match *m {
            "aws" => aws_accounts()
                .into_iter()
                .map(|a| ("aws", Some(a)))
                .collect::<Vec<_>>(),
            "alibaba-cloud" => ali_accounts()
                .into_iter()
                .map(|a| ("alibaba-cloud", Some(a)))
                .collect(),
            _ => vec![("enterprise", None)],
        })
        .collect();
    let all_accounts: Vec<_> = aws_accounts().into_iter().chain(ali_accounts()).collect();
    let random = (
        proptest::sample::select(METHODS.to_vec()),
        proptest::option::of(proptest::sample::select(all_accounts)),
    );
    prop_oneof![4 => proptest::sample::select(fitting), 1 => random].prop_map(|(m, account)| {
        Action::ChangeSettlement {
            method: MethodId::parse(m).unwrap(),
            account,
        }
    })
}

/// The flow's commands, weighted towards the step that comes next (`next` is 0 = request,
/// 1 = bind, 2 = accept, 3 = already upgraded).
fn flow_action(next: usize) -> impl Strategy<Value = Action> {
    let w = |step: usize| if step == next { 6 } else { 1 };
    prop_oneof![
        w(0) => proptest::sample::select(SITES.to_vec())
            .prop_map(|s| Action::RequestUpgrade { site: SiteId::parse(s).unwrap() }),
        w(1) => any_user_name().prop_map(|user_name| Action::BindAccount { user_name }),
        w(1) => any_user_name().prop_map(|user_name| Action::RegisterAndBindAccount {
            user_name,
            email: Email::parse("finance@example.com").unwrap(),
        }),
        w(2) => Just(Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06").unwrap()
        }),
    ]
}

/// A marketplace change: mostly about the accounts the workspace's site can settle through, and
/// often ending the subscription the workspace currently settles through.
fn marketplace_step(state: &Model) -> BoxedStrategy<Step> {
    let all: Vec<_> = aws_accounts()
        .into_iter()
        .map(|a| ("aws", a))
        .chain(ali_accounts().into_iter().map(|a| ("alibaba-cloud", a)))
        .collect();
    let allowed = state
        .site
        .as_deref()
        .and_then(model_site)
        .map_or(&[][..], |(m, _)| m);
    let mut relevant: Vec<_> = all
        .iter()
        .filter(|(m, _)| allowed.contains(m))
        .cloned()
        .collect();
    if relevant.is_empty() {
        relevant = all.clone();
    }
    let change = |pairs: Vec<(&'static str, CloudAccount)>| {
        (
            proptest::bool::weighted(0.6),
            proptest::sample::select(pairs),
        )
            .prop_map(|(on, (m, account))| {
                let method = MethodId::parse(m).unwrap();
                if on {
                    Step::Subscribe { method, account }
                } else {
                    Step::Unsubscribe { method, account }
                }
            })
    };
    match &state.settlement {
        Some((m, Some(account))) => {
            let end_current = Just(Step::Unsubscribe {
                method: MethodId::parse(m).unwrap(),
                account: account.clone(),
            });
            prop_oneof![2 => end_current, 2 => change(relevant), 1 => change(all)].boxed()
        }
        _ => prop_oneof![4 => change(relevant), 1 => change(all)].boxed(),
    }
}

fn advance() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0i64..86_400).prop_map(|seconds| Step::Advance { seconds }),
        (86_400i64..45 * 86_400).prop_map(|seconds| Step::Advance { seconds }),
    ]
}

struct WorkspaceMachine;

impl ReferenceStateMachine for WorkspaceMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        // 2020-01-01 .. 2030-01-01
        (1_577_836_800i64..1_893_456_000)
            .prop_map(|secs| Model {
                now: Utc.timestamp_opt(secs, 0).single().unwrap(),
                site: None,
                bound: None,
                commercial: false,
                settlement: None,
                last_change: None,
                directory: PRESEEDED.iter().map(|u| user(u)).collect(),
                subscriptions: BTreeSet::new(),
                expected: None,
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let command = |action: BoxedStrategy<Action>| {
            (role(), action).prop_map(|(role, action)| Step::Command { role, action })
        };
        let elsewhere =
            any_user_name().prop_map(|user_name| Step::AccountCreatedElsewhere { user_name });
        // Weight the flow towards what the stage makes interesting, but keep every step possible.
        let next = match (state.commercial, &state.site, &state.bound) {
            (true, _, _) => 3,
            (false, None, _) => 0,
            (false, Some(_), None) => 1,
            (false, Some(_), Some(_)) => 2,
        };
        let (flow, settle, clock, market) = if state.commercial {
            (1, 5, 4, 3)
        } else {
            (8, 1, 1, 1)
        };
        prop_oneof![
            flow => command(flow_action(next).boxed()),
            settle => command(settlement_request(state.site.as_deref()).boxed()),
            clock => advance(),
            market => marketplace_step(state),
            1 => elsewhere,
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.expected = None;
        match step {
            Step::Command { role, action } => match state.decide(*role, action) {
                Ok(mut next) => {
                    let events = match action {
                        Action::AcceptAgreement { .. } => 2,
                        _ => 1,
                    };
                    next.expected = Some(Ok(events));
                    return next;
                }
                Err(code) => state.expected = Some(Err(code)),
            },
            Step::Advance { seconds } => state.now += Duration::seconds(*seconds),
            Step::Subscribe { method, account } => {
                state
                    .subscriptions
                    .insert((method.as_str().to_owned(), account.clone()));
            }
            Step::Unsubscribe { method, account } => {
                state
                    .subscriptions
                    .remove(&(method.as_str().to_owned(), account.clone()));
            }
            Step::AccountCreatedElsewhere { user_name } => {
                state.directory.insert(user_name.clone());
            }
        }
        state
    }
}

struct Sut {
    world: World,
    state: Workspace,
    log: Vec<WorkspaceEvent>,
    commands: u64,
    ever_commercial: bool,
}

struct WorkspaceUnderTest;

impl StateMachineTest for WorkspaceUnderTest {
    type SystemUnderTest = Sut;
    type Reference = WorkspaceMachine;

    fn init_test(model: &Model) -> Sut {
        let world = World::new();
        for name in PRESEEDED {
            world.expense_center.add(&user(name));
        }
        world.clock.set(model.now);
        Sut {
            world,
            state: Workspace::default(),
            log: Vec::new(),
            commands: 0,
            ever_commercial: false,
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        match step {
            Step::Command { role, action } => {
                sut.commands += 1;
                let command = WorkspaceCommand::new(
                    ExternalId::parse(&format!("cmd-{}", sut.commands)).unwrap(),
                    Actor::new(ActorId::parse("actor-1").unwrap(), role),
                    action.clone(),
                );
                let result = sut.world.execute(&sut.state, &command);
                match (result, model.expected) {
                    (Ok(events), Some(Ok(n))) => {
                        assert_eq!(events.len(), n, "{action:?} produced {events:?}");
                        for event in &events {
                            check_at_emission(&sut, event);
                            sut.state = sut
                                .state
                                .evolve(event)
                                .unwrap_or_else(|e| panic!("emitted event does not evolve: {e}"));
                            sut.log.push(event.clone());
                        }
                        sut.ever_commercial |= sut.state.plan() == Plan::Commercial;
                    }
                    // I5: a refusal returns no events, so neither state nor log can change.
                    (Err(e), Some(Err(code))) => {
                        assert_eq!(e.code(), code, "{action:?}: {e}");
                        if std::env::var_os("SM_STATS").is_some() {
                            eprintln!("CODE {code}");
                        }
                    }
                    (result, expected) => {
                        panic!("{action:?}: aggregate gave {result:?}, model expected {expected:?}")
                    }
                }
            }
            Step::Advance { seconds } => sut.world.clock.advance(Duration::seconds(seconds)),
            Step::Subscribe { method, account } => {
                sut.world.marketplace.subscribe(&method, &account)
            }
            Step::Unsubscribe { method, account } => {
                sut.world.marketplace.unsubscribe(&method, &account)
            }
            Step::AccountCreatedElsewhere { user_name } => {
                sut.world.expense_center.add(&user_name);
            }
        }
        sut
    }

    fn teardown(sut: Sut, _model: Model) {
        if std::env::var_os("SM_STATS").is_some() {
            let changes = sut.state.settlement_changes();
            eprintln!(
                "STATS commercial={} changes={} events={}",
                sut.ever_commercial,
                changes.min(3),
                sut.log.len()
            );
        }
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let state = &sut.state;
        // The aggregate and the model agree on what the workspace looks like.
        assert_eq!(state.plan() == Plan::Commercial, model.commercial);
        assert_eq!(state.site().map(|s| s.as_str().to_owned()), model.site);
        assert_eq!(
            state.bound_account().map(|a| a.user_name.clone()),
            model.bound
        );
        let settlement = state.settlement().map(|s| {
            (
                s.method().as_str().to_owned(),
                s.cloud().map(|(_, a)| a.clone()),
            )
        });
        assert_eq!(settlement, model.settlement);

        // I1: once commercial, every later state is commercial.
        if sut.ever_commercial {
            assert_eq!(state.plan(), Plan::Commercial);
        }
        if sut
            .log
            .iter()
            .any(|e| matches!(e, WorkspaceEvent::PlanUpgraded(_)))
        {
            assert_eq!(state.plan(), Plan::Commercial);
            assert_eq!(state.data_visible_from(), state.upgraded_at());
        }
        check_order(&sut.log);
        // I3: every bound user name is one the Expense Center knows.
        for event in &sut.log {
            if let WorkspaceEvent::AccountBound(b) = event {
                assert!(sut.world.expense_center.contains(&b.user_name));
            }
        }
        // I4: the settlement method is one the site allows.
        if let (Some(site), Some(settlement)) = (state.site(), state.settlement()) {
            assert!(POLICY.site(site).unwrap().allows(&settlement.method()));
        }
        check_once_a_month(state, &sut.log);
        // I8: folding the log again gives the live state, through both entry points.
        assert_eq!(&Workspace::replay(&sut.log).unwrap(), state);
        let mut via_cqrs = Workspace::default();
        for event in &sut.log {
            cqrs_es::Aggregate::apply(&mut via_cqrs, event.clone());
        }
        assert_eq!(&via_cqrs, state);
        let json = serde_json::to_string(state).unwrap();
        assert_eq!(&serde_json::from_str::<Workspace>(&json).unwrap(), state);
        assert_eq!(
            state.settlement_changes() as usize,
            sut.log
                .iter()
                .filter(|e| matches!(e, WorkspaceEvent::SettlementChanged(_)))
                .count()
        );
    }
}

/// Checks made at the moment an event is emitted, against the outside world as it is then.
fn check_at_emission(sut: &Sut, event: &WorkspaceEvent) {
    match event {
        // I3: the Expense Center confirms the name at binding time.
        WorkspaceEvent::AccountBound(b) => assert!(sut.world.expense_center.contains(&b.user_name)),
        // I7: leaving a cloud account happens only once its subscription ended; a chosen cloud
        // account is subscribed.
        WorkspaceEvent::SettlementChanged(c) => {
            if let Some((m, a)) = c.from.cloud() {
                assert!(
                    !sut.world.marketplace.is_active(m, a),
                    "left an active subscription"
                );
            }
            if let Some((m, a)) = c.to.cloud() {
                assert!(
                    sut.world.marketplace.is_active(m, a),
                    "chose an unsubscribed account"
                );
            }
        }
        _ => {}
    }
}

/// I2: PlanUpgraded at most once, right after AgreementAccepted, only after UpgradeRequested and
/// AccountBound; AgreementAccepted is always followed by PlanUpgraded.
fn check_order(log: &[WorkspaceEvent]) {
    let position = |name: &str| log.iter().position(|e| e.event_type() == name);
    let count = |name: &str| log.iter().filter(|e| e.event_type() == name).count();
    assert!(count("PlanUpgraded") <= 1);
    assert!(count("UpgradeRequested") <= 1);
    assert!(count("AccountBound") <= 1);
    assert_eq!(count("AgreementAccepted"), count("PlanUpgraded"));
    if let Some(i) = position("PlanUpgraded") {
        assert!(i >= 3);
        assert_eq!(log[i - 1].event_type(), "AgreementAccepted");
        assert!(position("UpgradeRequested").unwrap() < position("AccountBound").unwrap());
        assert!(position("AccountBound").unwrap() < i - 1);
    }
}

/// I6: consecutive settlement changes fall in strictly later calendar months (site time zone).
fn check_once_a_month(state: &Workspace, log: &[WorkspaceEvent]) {
    let Some(site) = state.site() else { return };
    let Ok(site) = POLICY.site(site) else { return };
    let months: Vec<_> = log
        .iter()
        .filter_map(|e| match e {
            WorkspaceEvent::SettlementChanged(c) => Some(year_month(c.at, site.time_zone)),
            _ => None,
        })
        .collect();
    assert!(
        months.windows(2).all(|w| w[0] < w[1]),
        "two changes in one month: {months:?}"
    );
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        max_shrink_iters: 4096,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        .. Config::default()
    })]

    /// I1–I8 over random command sequences (up to 50 steps), against the reference model.
    #[test]
    fn the_aggregate_follows_the_reference_model(sequential 1..=50 => WorkspaceUnderTest);
}
