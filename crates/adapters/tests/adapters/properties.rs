//! Property: views rebuilt from the log equal views built incrementally (I8), for random command
//! sequences on SQLite.

use billing_adapters::view_store::{all_billing_views, audit_trail};
use billing_domain::*;
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
        on: bool,
    },
}

const WORKSPACES: [&str; 3] = ["w-a", "w-b", "w-c"];

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => proptest::sample::select(vec!["cn1", "us1", "cn4", "zz9"]).prop_map(act::request),
        2 => proptest::sample::select(vec!["acme-finance", "nobody-1"]).prop_map(act::bind),
        2 => Just(act::accept()),
        3 => prop_oneof![Just(act::settle("enterprise", None)), Just(act::settle("aws", Some("111111111111")))],
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let role = prop_oneof![8 => Just(Role::Owner), 1 => Just(Role::Member)];
    prop_oneof![
        8 => (0..WORKSPACES.len(), role, action()).prop_map(|(workspace, role, action)| Step::Command { workspace, role, action }),
        2 => (0i64..40).prop_map(|days| Step::Advance { days }),
        1 => any::<bool>().prop_map(|on| Step::Subscribe { on }),
    ]
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let h = Harness::sqlite().await;
    h.register("acme-finance").await;
    let aws = MethodId::parse("aws").unwrap();
    let account = CloudAccount {
        account_id: ExternalId::parse("111111111111").unwrap(),
        instance_id: None,
    };
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Step::Command {
                workspace,
                role,
                action,
            } => {
                let _ = run_on(
                    &h.billing.store,
                    WORKSPACES[workspace],
                    &format!("p-{i}"),
                    role,
                    action,
                )
                .await;
            }
            Step::Advance { days } => h.clock.advance(chrono::Duration::days(days)),
            Step::Subscribe { on } => h.billing.marketplace.set(&aws, &account, on).await.unwrap(),
        }
    }
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    let snapshot = || async {
        let views = all_billing_views(db).await.unwrap();
        let mut trails = Vec::new();
        for v in &views {
            trails.push(audit_trail(db, &v.workspace_id).await.unwrap());
        }
        (views, trails)
    };
    let incremental = snapshot().await;
    // Each view is the view of its loaded stream.
    for view in &incremental.0 {
        let (state, events) = h.billing.store.load(&view.workspace_id).await.unwrap();
        let last = events.last().unwrap();
        prop_assert_eq!(
            view,
            &billing_adapters::BillingView::from_state(
                &view.workspace_id,
                &state,
                last.sequence,
                &last.metadata.hash
            )
        );
    }
    h.billing.projector.rebuild(|_| {}).await.unwrap();
    prop_assert_eq!(snapshot().await, incremental);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        .. ProptestConfig::default()
    })]

    #[test]
    fn rebuilt_views_equal_incremental_views(steps in proptest::collection::vec(step(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(steps))?;
    }
}
