//! Authorization (SPEC §2, issue 5): only the workspace owner may request the upgrade, bind,
//! register-and-bind, accept the agreement or change settlement. A property test over every
//! mutating command × the roles `admin` and `member` × the workspace states (fresh, requested,
//! bound, commercial, commercial settling through a cloud account), through the real store on a
//! SQLite file, warm (the workspace cached) or cold (another process):
//! - the command is refused with `not-workspace-owner`, naming the actor and the role;
//! - it writes nothing: no event, no command record (so the owner may use the same command id
//!   afterwards), the head and the state stay; the Expense Center registers no account;
//! - sanity: the owner sending the same command in the same state is not refused by that rule.

use billing_domain::*;
use billing_store::{BillingStore, StoreError};
use proptest::prelude::*;

use crate::harness::*;

/// The workspace under test.
const WS: &str = "auth-ws";
/// A cloud account subscribed at the marketplace (AWS and Alibaba Cloud).
const SUBSCRIBED: &str = "111111111111";
/// A cloud account with no subscription.
const UNSUBSCRIBED: &str = "999999999999";
/// The marketplace instance of the subscribed Alibaba Cloud account.
const INSTANCE: &str = "i-0001";

/// How far the workspace got before the non-owner's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Requested,
    Bound,
    Commercial,
    /// Commercial, settling through the site's cloud method with the subscribed account.
    CommercialCloud,
}

/// A site and the cloud method it allows (`None`: enterprise only).
#[derive(Clone, Copy, Debug)]
struct Site {
    id: &'static str,
    cloud: Option<&'static str>,
}

const SITES: [Site; 4] = [
    Site {
        id: "us1",
        cloud: Some("aws"),
    },
    Site {
        id: "cn1",
        cloud: Some("alibaba-cloud"),
    },
    Site {
        id: "eu1",
        cloud: Some("aws"),
    },
    Site {
        id: "cn4",
        cloud: None,
    },
];

/// The cloud account of `method` as the marketplace knows it (Alibaba Cloud needs an instance).
fn cloud_account(method: &str, account: &str) -> CloudAccount {
    CloudAccount {
        account_id: ExternalId::parse(account).unwrap(),
        instance_id: (method == "alibaba-cloud").then(|| ExternalId::parse(INSTANCE).unwrap()),
    }
}

/// A mutating command, abstractly (the register name is made unique per case).
#[derive(Clone, Debug)]
enum Cmd {
    Request(&'static str),
    Bind(&'static str),
    RegisterAndBind,
    Accept(&'static str),
    Settle {
        method: &'static str,
        account: Option<&'static str>,
        instance: Option<&'static str>,
    },
}

/// Every command the strategy can produce.
fn all_cmds() -> Vec<Cmd> {
    let mut all: Vec<Cmd> = ["us1", "cn1", "cn4", "eu1", "ap1", "zz9"]
        .into_iter()
        .map(Cmd::Request)
        .collect();
    all.extend([KNOWN_USER, "nobody-here", "other-finance"].map(Cmd::Bind));
    all.push(Cmd::RegisterAndBind);
    all.extend(["2024-06", "2025-01"].map(Cmd::Accept));
    for (method, account, instance) in SETTLEMENTS {
        all.push(Cmd::Settle {
            method,
            account,
            instance,
        });
    }
    all
}

/// Settlement requests: valid and invalid, subscribed and not, allowed on the site and not.
const SETTLEMENTS: [(&str, Option<&str>, Option<&str>); 8] = [
    ("enterprise", None, None),
    ("enterprise", Some(SUBSCRIBED), None),
    ("aws", Some(SUBSCRIBED), None),
    ("aws", Some(UNSUBSCRIBED), None),
    ("aws", None, None),
    ("alibaba-cloud", Some(SUBSCRIBED), Some(INSTANCE)),
    ("alibaba-cloud", Some(SUBSCRIBED), None),
    ("bitcoin", None, None),
];

fn cmd_strategy() -> impl Strategy<Value = Cmd> {
    let settle = |method, account, instance| Cmd::Settle {
        method,
        account,
        instance,
    };
    prop_oneof![
        proptest::sample::select(vec!["us1", "cn1", "cn4", "eu1", "ap1", "zz9"])
            .prop_map(Cmd::Request),
        proptest::sample::select(vec![KNOWN_USER, "nobody-here", "other-finance"])
            .prop_map(Cmd::Bind),
        Just(Cmd::RegisterAndBind),
        proptest::sample::select(vec!["2024-06", "2025-01"]).prop_map(Cmd::Accept),
        proptest::sample::select(SETTLEMENTS.to_vec())
            .prop_map(move |(method, account, instance)| settle(method, account, instance)),
    ]
}

/// The action of `cmd`; `fresh_name` is the user name a register-and-bind asks for.
fn action(cmd: &Cmd, fresh_name: &str) -> Action {
    match cmd {
        Cmd::Request(site) => act::request(site),
        Cmd::Bind(name) => act::bind(name),
        Cmd::RegisterAndBind => act::register(fresh_name),
        Cmd::Accept(version) => Action::AcceptAgreement {
            version: AgreementVersion::parse(version).unwrap(),
        },
        Cmd::Settle {
            method,
            account,
            instance,
        } => act::settle(method, account.map(|a| (a, *instance))),
    }
}

fn command(id: &str, actor: &str, role: Role, action: Action) -> WorkspaceCommand {
    WorkspaceCommand::new(
        ExternalId::parse(id).unwrap(),
        Actor::new(ActorId::parse(actor).unwrap(), role),
        action,
    )
}

/// Brings the workspace to `state` on `site`, as its owner.
async fn prepare(h: &Harness, site: Site, state: State) {
    h.world
        .expense_center
        .add(&UserName::parse("other-finance").unwrap());
    for method in ["aws", "alibaba-cloud"] {
        let method_id = MethodId::parse(method).unwrap();
        h.world
            .marketplace
            .subscribe(&method_id, &cloud_account(method, SUBSCRIBED));
    }
    let w = ws(WS);
    let mut steps = Vec::new();
    if state != State::Fresh {
        steps.push(act::request(site.id));
    }
    if matches!(
        state,
        State::Bound | State::Commercial | State::CommercialCloud
    ) {
        steps.push(act::bind(KNOWN_USER));
    }
    if matches!(state, State::Commercial | State::CommercialCloud) {
        steps.push(act::accept());
    }
    if state == State::CommercialCloud {
        let method = site.cloud.unwrap();
        let instance = (method == "alibaba-cloud").then_some(INSTANCE);
        steps.push(act::settle(method, Some((SUBSCRIBED, instance))));
    }
    for (i, step) in steps.into_iter().enumerate() {
        h.store
            .execute(&w, &owner_cmd(&format!("setup-{i}"), step))
            .await
            .unwrap();
    }
}

/// What the store holds, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    events: i64,
    commands: i64,
    head: Option<String>,
    /// The state folded from the stored stream.
    stored: Workspace,
    /// The state the store decides on (its cache, when it has the workspace).
    decides_on: Workspace,
}

async fn snapshot(h: &Harness, store: &BillingStore) -> Snapshot {
    let w = ws(WS);
    Snapshot {
        events: h.count("events").await,
        commands: h.count("commands").await,
        head: store.head(&w).await.unwrap(),
        stored: store.load(&w).await.unwrap().0,
        decides_on: store.state(&w).await.unwrap(),
    }
}

#[derive(Clone, Debug)]
struct Case {
    site: usize,
    state: State,
    /// The non-owners' commands, each with its sender's role and whether it reaches a store
    /// that has the workspace cached (warm) or another one that does not (cold).
    attempts: Vec<(Cmd, Role, bool)>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let state = prop_oneof![
        Just(State::Fresh),
        Just(State::Requested),
        Just(State::Bound),
        Just(State::Commercial),
        Just(State::CommercialCloud),
    ];
    let role = prop_oneof![Just(Role::Admin), Just(Role::Member)];
    (
        0..SITES.len(),
        state,
        proptest::collection::vec((cmd_strategy(), role, any::<bool>()), 1..5),
    )
        .prop_map(|(site, state, attempts)| {
            // cn4 settles through enterprise only: its "cloud" state is plain commercial.
            let state = if state == State::CommercialCloud && SITES[site].cloud.is_none() {
                State::Commercial
            } else {
                state
            };
            Case {
                site,
                state,
                attempts,
            }
        })
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let h = Harness::sqlite().await;
    let site = SITES[case.site];
    prepare(&h, site, case.state).await;
    let w = ws(WS);
    let before = snapshot(&h, &h.store).await;
    prop_assert_eq!(
        &snapshot(&h, &h.reopen().await).await,
        &before,
        "cold and warm agree"
    );

    let policy = SitePolicy::builtin();
    for (i, (cmd, role, warm)) in case.attempts.iter().enumerate() {
        // Cold: another process, whose cache has never seen the workspace.
        let cold;
        let store = if *warm {
            &h.store
        } else {
            cold = h.reopen().await;
            &cold
        };
        let fresh_name = format!("new-user-{i}");
        let fresh_user = UserName::parse(&fresh_name).unwrap();
        let id = format!("na-{i}");
        let actor = if *role == Role::Admin {
            "ada-admin"
        } else {
            "max-member"
        };
        let sent = command(&id, actor, *role, action(cmd, &fresh_name));
        match store.execute(&w, &sent).await {
            Err(StoreError::Refused(DomainError::NotWorkspaceOwner {
                actor: refused_actor,
                role: refused_role,
            })) => {
                prop_assert_eq!(refused_actor.as_str(), actor);
                prop_assert_eq!(refused_role, *role);
            }
            other => {
                let state = case.state;
                let site = site.id;
                return Err(TestCaseError::fail(format!(
                    "{role} {cmd:?} in state {state:?} on {site}: not refused as a non-owner: \
                     {other:?}"
                )));
            }
        }
        prop_assert_eq!(
            &snapshot(&h, store).await,
            &before,
            "{} {:?} wrote something",
            role,
            cmd
        );
        prop_assert_eq!(&snapshot(&h, &h.store).await, &before);
        prop_assert!(
            !h.world.expense_center.contains(&fresh_user),
            "{role} {cmd:?} registered an Expense Center account"
        );

        // Sanity: the owner sending the same command in the same state is not refused by this
        // rule — the refusal is about the role, not about the command.
        let as_owner = command(&id, actor, Role::Owner, action(cmd, &fresh_name));
        let planned = plan(&before.stored, &as_owner, &policy, h.world.clock_now());
        prop_assert!(
            !matches!(planned, Err(DomainError::NotWorkspaceOwner { .. })),
            "the owner is refused too: {:?}",
            planned
        );
    }

    // The owner may now send the last refused command under the same command id: the refusal
    // left no command record behind (else this would be `command-id-reused`).
    let last = case.attempts.len() - 1;
    let (cmd, _, warm) = &case.attempts[last];
    let cold;
    let store = if *warm {
        &h.store
    } else {
        cold = h.reopen().await;
        &cold
    };
    let fresh_name = format!("new-user-{last}");
    let actor = "olivia-owner";
    let as_owner = command(
        &format!("na-{last}"),
        actor,
        Role::Owner,
        action(cmd, &fresh_name),
    );
    match store.execute(&w, &as_owner).await {
        Ok(outcome) => prop_assert!(!outcome.replayed, "a refused command left a record"),
        Err(StoreError::Refused(refusal)) => prop_assert!(
            !matches!(refusal, DomainError::NotWorkspaceOwner { .. }),
            "the owner is refused as a non-owner: {refusal}"
        ),
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "owner {cmd:?} in state {:?}: {other}",
                case.state
            )))
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        // Failures are reported with their minimal input, not written into the source tree.
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn every_mutating_command_by_a_non_owner_is_refused_and_writes_nothing(case in case_strategy()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(case))?;
    }
}

/// The same, exhaustively: every site × state × command × non-owner role (warm or cold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_combination_is_refused_and_writes_nothing() {
    let states = [
        State::Fresh,
        State::Requested,
        State::Bound,
        State::Commercial,
        State::CommercialCloud,
    ];
    let mut attempts = 0;
    for (site, spec) in SITES.iter().enumerate() {
        for state in states {
            if state == State::CommercialCloud && spec.cloud.is_none() {
                continue;
            }
            // Each command from both roles, one through the warm store and one through a cold
            // one, alternating which.
            let mut tries = Vec::new();
            for (i, cmd) in all_cmds().into_iter().enumerate() {
                tries.push((cmd.clone(), Role::Admin, i % 2 == 0));
                tries.push((cmd, Role::Member, i % 2 == 1));
            }
            attempts += tries.len();
            let case = Case {
                site,
                state,
                attempts: tries,
            };
            if let Err(e) = run(case).await {
                panic!("{} in state {state:?}: {e}", spec.id);
            }
        }
    }
    assert_eq!(attempts, 19 * all_cmds().len() * 2);
}

/// A non-owner re-sending the id of a command the owner executed gets neither the owner's
/// outcome nor a write: the content (the actor's role) differs, so the id is refused as reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_cannot_replay_an_owners_command_id() {
    let h = Harness::sqlite().await;
    let w = ws(WS);
    let owner = command("req-1", "alice", Role::Owner, act::request("us1"));
    h.store.execute(&w, &owner).await.unwrap();
    let before = snapshot(&h, &h.store).await;
    for role in [Role::Admin, Role::Member] {
        for store in [&h.store, &h.reopen().await] {
            let resent = command("req-1", "alice", role, act::request("us1"));
            match store.execute(&w, &resent).await {
                Err(StoreError::CommandIdReused { .. })
                | Err(StoreError::Refused(DomainError::NotWorkspaceOwner { .. })) => {}
                other => panic!("{role} re-sending the owner's command id: {other:?}"),
            }
            assert_eq!(snapshot(&h, store).await, before);
        }
    }
}
