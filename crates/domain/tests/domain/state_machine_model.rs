//! The reference model of the state machine test (`state_machine.rs`): an independent model of
//! SPEC §2 and §10 with its own copy of the site table, the countdown's 14 and 3 days and each
//! provider's behaviour when a subscription ends, and the strategies that generate random steps
//! (commands by every role, clock jumps of seconds and of days, the clock set back, marketplace
//! changes).

use std::collections::BTreeSet;

use billing_domain::*;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use crate::harness::user;

/// The model's own copy of the countdown length and the reminder lead (SPEC §10).
const COUNTDOWN_DAYS: i64 = 14;
const REMINDER_LEAD_DAYS: i64 = 3;
const BILLS: [&str; 4] = ["b-1", "b-2", "b-3", "b-4"];

pub const SITES: [&str; 8] = ["cn1", "cn2", "cn4", "us1", "cn6", "eu1", "ap1", "zz9"];
pub const USERS: [&str; 5] = ["acme-finance", "globex", "initech", "nobody-1", "nobody-2"];
pub const PRESEEDED: [&str; 3] = ["acme-finance", "globex", "initech"];
pub const METHODS: [&str; 4] = ["enterprise", "aws", "alibaba-cloud", "paypal"];

/// What an ended subscription does, per provider: the model's own copy (`true` = fall back).
fn falls_back(method: &str) -> bool {
    method == "alibaba-cloud"
}

/// The model's own copy of the site table (written independently of `sites.json`).
pub fn model_site(site: &str) -> Option<(&'static [&'static str], Tz)> {
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

pub fn aws_accounts() -> Vec<CloudAccount> {
    ["111111111111", "222222222222"]
        .iter()
        .map(|a| CloudAccount {
            account_id: ExternalId::parse(a).unwrap(),
            instance_id: None,
        })
        .collect()
}

pub fn ali_accounts() -> Vec<CloudAccount> {
    [("1688001", "i-1"), ("1688002", "i-2")]
        .iter()
        .map(|(a, i)| CloudAccount {
            account_id: ExternalId::parse(a).unwrap(),
            instance_id: Some(ExternalId::parse(i).unwrap()),
        })
        .collect()
}

#[derive(Clone, Debug)]
pub enum Step {
    Command {
        role: Role,
        action: Action,
    },
    Advance {
        seconds: i64,
    },
    /// The clock is set back (a command then happens before the stream's newest event).
    Rewind {
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

/// A reason in the model: a bill, or the ended subscription of a cloud account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MReason {
    Bill(String),
    Cloud(String, CloudAccount),
}

/// The model's standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MStanding {
    Good,
    Countdown,
    Locked,
    Dissolved,
}

/// The model's countdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MCountdown {
    pub number: u32,
    pub deadline: DateTime<Utc>,
    pub remind_at: DateTime<Utc>,
    pub reminded: bool,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub now: DateTime<Utc>,
    pub site: Option<String>,
    pub bound: Option<UserName>,
    pub commercial: bool,
    /// (method, cloud account) once commercial.
    pub settlement: Option<(String, Option<CloudAccount>)>,
    /// The last change the owner asked for (the only ones that count toward once a month).
    pub last_change: Option<DateTime<Utc>>,
    pub directory: BTreeSet<UserName>,
    pub subscriptions: BTreeSet<(String, CloudAccount)>,
    pub standing: MStanding,
    pub countdown: Option<MCountdown>,
    pub countdowns: u32,
    pub reasons: Vec<MReason>,
    pub bills: BTreeSet<String>,
    /// When the newest event occurred.
    pub newest: Option<DateTime<Utc>>,
    /// What the last step should have produced: the event types, or a refusal code.
    pub expected: Option<Result<Vec<&'static str>, &'static str>>,
}

pub fn year_month(t: DateTime<Utc>, tz: Tz) -> i32 {
    let local = t.with_timezone(&tz);
    local.year() * 12 + local.month() as i32
}

fn system_only(action: &Action) -> bool {
    matches!(
        action,
        Action::RecordArrears { .. }
            | Action::ReportSubscriptionEnded { .. }
            | Action::ReportSubscriptionResumed { .. }
            | Action::SendReminder
            | Action::Lock
    )
}

impl Model {
    fn cloud_reason_open(&self, method: &str, account: &CloudAccount) -> bool {
        self.reasons
            .iter()
            .any(|r| matches!(r, MReason::Cloud(m, a) if m == method && a == account))
    }

    /// Whether the current settlement is a cloud account whose subscription ended.
    fn current_cloud_ended(&self) -> bool {
        match &self.settlement {
            Some((m, Some(a))) => self.cloud_reason_open(m, a),
            _ => false,
        }
    }

    /// The model's decision: the next model and the event types, or the refusal code. The
    /// checks run in SPEC order: dissolved, role, clock, locked, the action's rules.
    pub fn decide(
        &self,
        role: Role,
        action: &Action,
    ) -> Result<(Model, Vec<&'static str>), &'static str> {
        if self.standing == MStanding::Dissolved {
            return Err("workspace-dissolved");
        }
        let allowed = match action {
            _ if system_only(action) => {
                if role != Role::System {
                    return Err("not-billing-system");
                }
                true
            }
            Action::SettleArrears { .. } => matches!(role, Role::Owner | Role::System),
            _ => role == Role::Owner,
        };
        if !allowed {
            return Err("not-workspace-owner");
        }
        if self.newest.is_some_and(|newest| self.now < newest) {
            return Err("clock-behind-stream");
        }
        if self.standing == MStanding::Locked && role == Role::Owner {
            let clears = match action {
                Action::SettleArrears { bill, .. } => self
                    .reasons
                    .contains(&MReason::Bill(bill.as_str().to_owned())),
                Action::ChangeSettlement(request) => {
                    request.method.as_str() == "enterprise"
                        && request.is_bare()
                        && self.current_cloud_ended()
                }
                _ => false,
            };
            if !clears {
                return Err("workspace-locked");
            }
        }
        let mut next = self.clone();
        let mut events = vec![];
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
                events.push("UpgradeRequested");
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
                events.push("AccountBound");
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
                events.extend(["AgreementAccepted", "PlanUpgraded"]);
            }
            Action::ChangeSettlement(request) => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                let site = self.site.as_deref().unwrap_or_default();
                let (allowed, tz) = model_site(site).ok_or("unknown-site")?;
                let m = request.method.as_str();
                if !allowed.contains(&m) {
                    return Err("settlement-not-allowed-on-site");
                }
                let shape_ok = matches!(
                    (m, request.account.is_some(), request.instance.is_some()),
                    ("enterprise", false, false)
                        | ("aws", true, false)
                        | ("alibaba-cloud", true, true)
                );
                if !shape_ok {
                    return Err("invalid-settlement-request");
                }
                let account = request.account.clone().map(|account_id| CloudAccount {
                    account_id,
                    instance_id: request.instance.clone(),
                });
                let target = (m.to_owned(), account.clone());
                let current = self.settlement.clone().unwrap_or_default();
                if target == current {
                    return Err("settlement-unchanged");
                }
                // Leaving an ended cloud subscription for enterprise is not the owner's change.
                let counts = !(m == "enterprise" && self.current_cloud_ended());
                if counts {
                    if let Some(last) = self.last_change {
                        if year_month(self.now, tz) <= year_month(last, tz) {
                            return Err("settlement-change-too-soon");
                        }
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
                if let (cm, Some(ca)) = &current {
                    next.reasons
                        .retain(|r| !matches!(r, MReason::Cloud(rm, ra) if rm == cm && ra == ca));
                }
                next.settlement = Some(target);
                if counts {
                    next.last_change = Some(self.now);
                }
                events.push("SettlementChanged");
            }
            Action::RecordArrears { bill, .. } => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                if self.bills.contains(bill.as_str()) {
                    return Err("arrears-already-recorded");
                }
                next.bills.insert(bill.as_str().to_owned());
                next.reasons.push(MReason::Bill(bill.as_str().to_owned()));
                events.push("ArrearsRecorded");
            }
            Action::SettleArrears { bill, .. } => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                let reason = MReason::Bill(bill.as_str().to_owned());
                if !self.reasons.contains(&reason) {
                    return Err("unknown-arrears");
                }
                next.reasons.retain(|r| *r != reason);
                events.push("ArrearsSettled");
            }
            Action::ReportSubscriptionEnded { method, account } => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                let m = method.as_str();
                if self.settlement != Some((m.to_owned(), Some(account.clone()))) {
                    return Err("not-settling-through-account");
                }
                if self.cloud_reason_open(m, account) {
                    return Err("cloud-subscription-already-ended");
                }
                if falls_back(m) {
                    next.settlement = Some(("enterprise".into(), None));
                    events.push("SettlementChanged");
                } else {
                    next.reasons
                        .push(MReason::Cloud(m.to_owned(), account.clone()));
                    events.push("CloudSubscriptionEnded");
                }
            }
            Action::ReportSubscriptionResumed { method, account } => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                let m = method.as_str();
                if !self.cloud_reason_open(m, account) {
                    return Err("cloud-subscription-not-ended");
                }
                if !self
                    .subscriptions
                    .contains(&(m.to_owned(), account.clone()))
                {
                    return Err("cloud-account-not-subscribed");
                }
                next.reasons
                    .retain(|r| !matches!(r, MReason::Cloud(rm, ra) if rm == m && ra == account));
                events.push("CloudSubscriptionResumed");
            }
            Action::SendReminder | Action::Lock | Action::Dissolve => {
                if !self.commercial {
                    return Err("not-commercial-yet");
                }
                if self.standing != MStanding::Countdown {
                    return Err("not-in-countdown");
                }
                let running = next.countdown.as_mut().ok_or("model: countdown missing")?;
                match action {
                    Action::SendReminder => {
                        if running.reminded {
                            return Err("reminder-already-sent");
                        }
                        if self.now < running.remind_at {
                            return Err("deadline-not-reached");
                        }
                        running.reminded = true;
                        events.push("CountdownReminded");
                    }
                    Action::Lock => {
                        if self.now < running.deadline {
                            return Err("deadline-not-reached");
                        }
                        next.standing = MStanding::Locked;
                        events.push("WorkspaceLocked");
                    }
                    _ => {
                        next.standing = MStanding::Dissolved;
                        events.push("WorkspaceDissolved");
                    }
                }
            }
        }
        // What the standing makes of it: the first reason starts a countdown, clearing the last
        // one unlocks.
        if next.commercial {
            match next.standing {
                MStanding::Good if !next.reasons.is_empty() => {
                    next.countdowns += 1;
                    let deadline = self.now + Duration::days(COUNTDOWN_DAYS);
                    next.countdown = Some(MCountdown {
                        number: next.countdowns,
                        deadline,
                        remind_at: deadline - Duration::days(REMINDER_LEAD_DAYS),
                        reminded: false,
                    });
                    next.standing = MStanding::Countdown;
                    events.push("CountdownStarted");
                }
                MStanding::Countdown | MStanding::Locked if next.reasons.is_empty() => {
                    next.standing = MStanding::Good;
                    events.push("WorkspaceUnlocked");
                }
                _ => {}
            }
        }
        next.newest = Some(self.now);
        Ok((next, events))
    }
}

/// Mostly the owner, sometimes anyone else (the billing system included).
pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        12 => Just(Role::Owner),
        1 => Just(Role::Admin),
        1 => Just(Role::Member),
        1 => Just(Role::System),
    ]
}

/// Mostly the billing system, sometimes a workspace role.
fn system_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        12 => Just(Role::System),
        1 => Just(Role::Owner),
        1 => Just(Role::Admin),
        1 => Just(Role::Member),
    ]
}

/// Settling a bill: the owner or the billing system, sometimes someone else.
fn payer_role() -> impl Strategy<Value = Role> {
    prop_oneof![6 => Just(Role::Owner), 5 => Just(Role::System), 1 => Just(Role::Member)]
}

fn any_bill() -> impl Strategy<Value = BillId> {
    proptest::sample::select(BILLS.to_vec()).prop_map(|b| BillId::parse(b).unwrap())
}

/// The cloud accounts a subscription report may name: mostly the current one.
fn reported_account(state: &Model) -> BoxedStrategy<(MethodId, CloudAccount)> {
    let all: Vec<_> = aws_accounts()
        .into_iter()
        .map(|a| (MethodId::parse("aws").unwrap(), a))
        .chain(
            ali_accounts()
                .into_iter()
                .map(|a| (MethodId::parse("alibaba-cloud").unwrap(), a)),
        )
        .collect();
    match &state.settlement {
        Some((m, Some(account))) => prop_oneof![
            4 => Just((MethodId::parse(m).unwrap(), account.clone())),
            1 => proptest::sample::select(all),
        ]
        .boxed(),
        _ => proptest::sample::select(all).boxed(),
    }
}

/// The commands of SPEC §10, each by a role that mostly may send it.
fn standing_step(state: &Model) -> BoxedStrategy<Step> {
    let command = |role: BoxedStrategy<Role>, action: BoxedStrategy<Action>| {
        (role, action).prop_map(|(role, action)| Step::Command { role, action })
    };
    let system = || system_role().boxed();
    let record = (any_bill(), 1u64..1_000_000)
        .prop_map(|(bill, minor)| Action::RecordArrears {
            bill,
            amount: Money::new(minor, Currency::Cny).unwrap(),
        })
        .boxed();
    let pay = (any_bill(), proptest::option::of(Just("svc-1")))
        .prop_map(|(bill, card)| Action::SettleArrears {
            bill,
            stored_value_card: card.map(|c| ExternalId::parse(c).unwrap()),
        })
        .boxed();
    let report = (reported_account(state), any::<bool>())
        .prop_map(|((method, account), ended)| {
            if ended {
                Action::ReportSubscriptionEnded { method, account }
            } else {
                Action::ReportSubscriptionResumed { method, account }
            }
        })
        .boxed();
    prop_oneof![
        3 => command(system(), record),
        3 => command(payer_role().boxed(), pay),
        3 => command(system(), report),
        2 => command(system(), Just(Action::SendReminder).boxed()),
        2 => command(system(), Just(Action::Lock).boxed()),
        1 => command(role().boxed(), Just(Action::Dissolve).boxed()),
    ]
    .boxed()
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
    let fitting: Vec<_> = fitting
        .into_iter()
        .map(|(m, account)| {
            let (account, instance) =
                account.map_or((None, None), |a| (Some(a.account_id), a.instance_id));
            (m, account, instance)
        })
        .collect();
    // Anything at all: every method with an account id and an instance id each given or not,
    // the shapes a door hands over as its user typed them.
    let ids = |v: Vec<CloudAccount>| v.into_iter().map(|a| a.account_id).collect::<Vec<_>>();
    let all_accounts: Vec<_> = ids(aws_accounts())
        .into_iter()
        .chain(ids(ali_accounts()))
        .collect();
    let instances: Vec<ExternalId> = ali_accounts()
        .into_iter()
        .filter_map(|a| a.instance_id)
        .collect();
    let random = (
        proptest::sample::select(METHODS.to_vec()),
        proptest::option::of(proptest::sample::select(all_accounts)),
        proptest::option::of(proptest::sample::select(instances)),
    );
    prop_oneof![4 => proptest::sample::select(fitting), 1 => random].prop_map(
        |(m, account, instance)| {
            Action::ChangeSettlement(SettlementRequest::new(
                MethodId::parse(m).unwrap(),
                account,
                instance,
            ))
        },
    )
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

/// Clock jumps: seconds, whole days (0–20, around the countdown's 11 and 14), long stretches,
/// and now and then the clock set back.
fn advance() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0i64..86_400).prop_map(|seconds| Step::Advance { seconds }),
        3 => (0i64..=20).prop_map(|days| Step::Advance { seconds: days * 86_400 }),
        2 => (86_400i64..45 * 86_400).prop_map(|seconds| Step::Advance { seconds }),
        1 => (1i64..7_200).prop_map(|seconds| Step::Rewind { seconds }),
    ]
}

pub struct WorkspaceMachine;

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
                standing: MStanding::Good,
                countdown: None,
                countdowns: 0,
                reasons: Vec::new(),
                bills: BTreeSet::new(),
                newest: None,
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
        let (flow, settle, clock, market, standing) = match (state.commercial, &state.standing) {
            (false, _) => (8, 1, 1, 1, 1),
            (true, MStanding::Countdown) => (1, 3, 7, 2, 9),
            (true, MStanding::Dissolved) => (1, 1, 1, 1, 1),
            (true, _) => (1, 4, 4, 3, 8),
        };
        prop_oneof![
            flow => command(flow_action(next).boxed()),
            settle => command(settlement_request(state.site.as_deref()).boxed()),
            clock => advance(),
            market => marketplace_step(state),
            standing => standing_step(state),
            1 => elsewhere,
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.expected = None;
        match step {
            Step::Command { role, action } => match state.decide(*role, action) {
                Ok((mut next, events)) => {
                    next.expected = Some(Ok(events));
                    return next;
                }
                Err(code) => state.expected = Some(Err(code)),
            },
            Step::Advance { seconds } => state.now += Duration::seconds(*seconds),
            Step::Rewind { seconds } => state.now -= Duration::seconds(*seconds),
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
