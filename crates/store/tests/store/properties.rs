//! A property test through the real store on SQLite: random command sequences over a few
//! workspaces; what is read back folds to the live state, the chain verifies, and refusals write
//! nothing.

use billing_domain::*;
use billing_store::{BillingStore, StoreError, StoreOptions, Verifier};
use proptest::prelude::*;

use crate::harness::*;

#[derive(Clone, Debug)]
enum Step {
    Command {
        workspace: usize,
        role: Role,
        action: Action,
    },
    Advance {
        days: i64,
    },
    Subscribe {
        account: &'static str,
    },
    Unsubscribe {
        account: &'static str,
    },
}

const WORKSPACES: [&str; 3] = ["w-a", "w-b", "w-c"];
const AWS: [&str; 2] = ["111111111111", "222222222222"];

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => proptest::sample::select(vec!["cn1", "us1", "cn4", "eu1", "zz9"]).prop_map(act::request),
        2 => proptest::sample::select(vec![KNOWN_USER, "nobody-1"]).prop_map(act::bind),
        1 => proptest::sample::select(vec!["new-1", "new-2", KNOWN_USER]).prop_map(act::register),
        2 => Just(act::accept()),
        3 => prop_oneof![
            Just(act::settle("enterprise", None)),
            proptest::sample::select(AWS.to_vec()).prop_map(|a| act::settle("aws", Some((a, None)))),
        ],
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let role = prop_oneof![8 => Just(Role::Owner), 1 => Just(Role::Admin), 1 => Just(Role::Member)];
    prop_oneof![
        8 => (0..WORKSPACES.len(), role, action())
            .prop_map(|(workspace, role, action)| Step::Command { workspace, role, action }),
        2 => (0i64..40).prop_map(|days| Step::Advance { days }),
        1 => proptest::sample::select(AWS.to_vec()).prop_map(|account| Step::Subscribe { account }),
        1 => proptest::sample::select(AWS.to_vec()).prop_map(|account| Step::Unsubscribe { account }),
    ]
}

fn aws(account: &str) -> (MethodId, CloudAccount) {
    (
        MethodId::parse("aws").unwrap(),
        CloudAccount {
            account_id: ExternalId::parse(account).unwrap(),
            instance_id: None,
        },
    )
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let world = World::new();
    let store = BillingStore::open("sqlite::memory:", world.services.clone())
        .await
        .unwrap();
    let mut written = 0u64;
    let mut commands = 0u64;
    for step in steps {
        match step {
            Step::Command {
                workspace,
                role,
                action,
            } => {
                commands += 1;
                let before = store.db().count_events().await.unwrap();
                let command = cmd(&format!("p-{commands}"), role, action);
                match store.execute(&ws(WORKSPACES[workspace]), &command).await {
                    Ok(outcome) => {
                        prop_assert!(!outcome.replayed);
                        prop_assert!(!outcome.events.is_empty());
                        written += outcome.events.len() as u64;
                    }
                    Err(StoreError::Refused(_)) => {
                        prop_assert_eq!(
                            store.db().count_events().await.unwrap(),
                            before,
                            "a refusal wrote"
                        );
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("unexpected: {e}"))),
                }
            }
            Step::Advance { days } => world.clock.advance(chrono::Duration::days(days)),
            Step::Subscribe { account } => {
                let (m, a) = aws(account);
                world.marketplace.subscribe(&m, &a);
            }
            Step::Unsubscribe { account } => {
                let (m, a) = aws(account);
                world.marketplace.unsubscribe(&m, &a);
            }
        }
    }
    prop_assert_eq!(store.db().count_events().await.unwrap(), written);
    // Another "process" on the same database loads every stream cold.
    let cold = BillingStore::from_db(
        store.db().clone(),
        world.services.clone(),
        &StoreOptions::default(),
    );
    for name in WORKSPACES {
        let live = store.state(&ws(name)).await.unwrap();
        let (loaded, events) = cold.load(&ws(name)).await.unwrap();
        prop_assert_eq!(&live, &loaded);
        prop_assert_eq!(
            &Workspace::replay(events.iter().map(|e| &e.event)).unwrap(),
            &live
        );
        let head = cold.head(&ws(name)).await.unwrap();
        prop_assert_eq!(
            head.as_deref(),
            events.last().map(|e| e.metadata.hash.as_str())
        );
    }
    let mut export = Vec::new();
    store.export(&mut export, |_| {}).await.unwrap();
    let mut verifier = Verifier::new(Some(&world.services.policy));
    for (i, line) in String::from_utf8(export).unwrap().lines().enumerate() {
        let (findings, _) = verifier.push_line(i as u64 + 1, line);
        prop_assert!(findings.is_empty(), "{:?}", findings);
    }
    let (findings, _, summary) = verifier.finish();
    prop_assert!(findings.is_empty(), "{:?}", findings);
    prop_assert_eq!(summary.events, written);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        .. ProptestConfig::default()
    })]

    #[test]
    fn random_commands_through_the_sqlite_store_fold_to_the_live_state(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(steps))?;
    }
}
