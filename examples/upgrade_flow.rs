//! Walks the documented upgrade flow on one workspace and prints the billing state after each
//! step: request the upgrade, try to bind an unknown user name (refused), bind a verified one,
//! accept the opening agreement (which upgrades), and change settlement to a subscribed AWS
//! account a month later.
//!
//! Run with `cargo run --example upgrade_flow`.

use std::sync::Arc;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace, ManualClock};
use billing_domain::{
    execute, Action, Actor, ActorId, AgreementVersion, CloudAccount, DomainError, ExternalId,
    MethodId, Role, SettlementRequest, SiteId, SitePolicy, UserName, Workspace, WorkspaceCommand,
    WorkspaceServices,
};

fn print_state(step: &str, workspace: &Workspace) {
    println!("== {step}");
    println!("   plan:              {}", workspace.plan().display_name());
    println!(
        "   upgrade step:      {}",
        workspace.upgrade_step().as_str()
    );
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!(
        "   site:              {}",
        or_dash(workspace.site().map(ToString::to_string))
    );
    println!(
        "   bound user name:   {}",
        or_dash(workspace.bound_account().map(|a| a.user_name.to_string()))
    );
    println!(
        "   agreement:         {}",
        or_dash(workspace.agreement_version().map(ToString::to_string))
    );
    println!(
        "   settlement:        {}",
        or_dash(workspace.settlement().map(ToString::to_string))
    );
    println!(
        "   data visible from: {}",
        or_dash(workspace.data_visible_from().map(|t| t.to_rfc3339()))
    );
    println!("   settlement changes: {}", workspace.settlement_changes());
}

async fn run(
    workspace: &mut Workspace,
    services: &WorkspaceServices,
    id: &str,
    actor: &Actor,
    action: Action,
) -> Result<(), DomainError> {
    let command = WorkspaceCommand::new(ExternalId::parse(id)?, actor.clone(), action);
    let events = execute(workspace, &command, services).await?;
    for event in &events {
        println!("   + {}: {}", event.event_type(), event.describe());
        *workspace = workspace.evolve(event)?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), DomainError> {
    let expense_center = Arc::new(InMemoryExpenseCenter::new());
    expense_center.add(&UserName::parse("acme-finance")?);
    let marketplace = Arc::new(InMemoryMarketplace::new());
    let clock = Arc::new(ManualClock::new(
        "2026-11-27T09:00:00Z".parse().unwrap_or_default(),
    ));
    let services = WorkspaceServices {
        expense_center,
        marketplace: marketplace.clone(),
        policy: Arc::new(SitePolicy::builtin()),
        clock: clock.clone(),
    };
    let owner = Actor::new(ActorId::parse("alice")?, Role::Owner);
    let mut workspace = Workspace::default();
    print_state("a new workspace", &workspace);

    let site = SiteId::parse("us1")?;
    run(
        &mut workspace,
        &services,
        "cmd-1",
        &owner,
        Action::RequestUpgrade { site },
    )
    .await?;
    print_state("1. upgrade requested", &workspace);

    let unknown = Action::BindAccount {
        user_name: UserName::parse("nobody-here")?,
    };
    match run(&mut workspace, &services, "cmd-2", &owner, unknown).await {
        Err(refusal) => println!("== 2. binding an unknown user name is refused\n   {refusal}"),
        Ok(()) => return Err(DomainError::UpgradeNotRequested),
    }

    let bind = Action::BindAccount {
        user_name: UserName::parse("acme-finance")?,
    };
    run(&mut workspace, &services, "cmd-3", &owner, bind).await?;
    print_state("2. Expense Center account bound (verified)", &workspace);

    let accept = Action::AcceptAgreement {
        version: AgreementVersion::parse("2024-06")?,
    };
    run(&mut workspace, &services, "cmd-4", &owner, accept).await?;
    print_state("3. agreement accepted: upgraded, for good", &workspace);

    let aws = MethodId::parse("aws")?;
    let account = CloudAccount {
        account_id: ExternalId::parse("123456789012")?,
        instance_id: None,
    };
    marketplace.subscribe(&aws, &account);
    clock.advance(chrono::Duration::days(7));
    let change = Action::ChangeSettlement(SettlementRequest::of(aws, Some(account)));
    run(&mut workspace, &services, "cmd-5", &owner, change).await?;
    print_state(
        "4. settlement changed to a subscribed AWS account",
        &workspace,
    );
    Ok(())
}
