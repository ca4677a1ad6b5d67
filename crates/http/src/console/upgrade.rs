//! The upgrade page (owner only) and its forms: request the upgrade, bind or register an Expense
//! Center account, accept the opening agreement. A refusal shows the step's page again with the
//! refusal in words.

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use billing_domain::{
    Action, AgreementVersion, DomainError, Email, Plan, SiteId, UpgradeStep, UserName,
};
use serde::Deserialize;

use super::billing::{load, owner_only, refused_page, Loaded};
use super::pages::{Choice, Layout, UpgradePage};
use super::session::{form_fields, new_command_id, posted, signed_in, Posted, Session};
use super::words::{self, Said};
use super::{html, see_other, Reply, AGREEMENT_VERSION};
use crate::Billing;

/// What the owner last typed into the upgrade page's forms, shown again after a refusal.
#[derive(Default)]
pub(crate) struct Entered {
    /// The site chosen.
    site: String,
    /// The bind form's user name.
    bind_username: String,
    /// The register form's user name.
    register_username: String,
    /// The register form's e-mail address.
    register_email: String,
}

/// The request form.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestForm {
    /// The site id.
    site: Option<String>,
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id.
    command_id: Option<String>,
}

/// The bind form and the register form (`email` only on the latter).
#[derive(Debug, Deserialize)]
pub(crate) struct AccountForm {
    /// The Expense Center user name.
    username: Option<String>,
    /// The new account's e-mail address.
    email: Option<String>,
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id.
    command_id: Option<String>,
}

/// The agreement form.
#[derive(Debug, Deserialize)]
pub(crate) struct AcceptForm {
    /// `yes` when ticked.
    agree: Option<String>,
    /// The agreement version shown.
    version: Option<String>,
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id.
    command_id: Option<String>,
}

form_fields!(RequestForm, AccountForm, AcceptForm);

/// The upgrade page at the workspace's current step, saying `error` (with its status); `303` to
/// Billing once commercial (an error then is shown on a page of its own).
fn upgrade_page(
    billing: &Billing,
    session: &Session,
    w: &Loaded,
    error: Option<Said>,
    entered: Entered,
) -> Response {
    let step = match w.state.upgrade_step() {
        UpgradeStep::NotRequested => "request",
        UpgradeStep::Requested => "account",
        UpgradeStep::AccountBound => "agreement",
        UpgradeStep::AgreementAccepted | UpgradeStep::Upgraded => {
            return w.to_billing(billing, session, error);
        }
    };
    let cx = w.cx(billing);
    let sites = billing
        .policy()
        .sites()
        .map(|s| Choice {
            value: s.id.to_string(),
            text: s.name.clone(),
            selected: s.id.as_str() == entered.site,
        })
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    html(
        status,
        &UpgradePage {
            layout: Layout::new(billing, "Upgrade", Some(session)),
            id: w.id.to_string(),
            step,
            error,
            csrf: session.csrf.clone(),
            billing_href: w.path(billing, ""),
            request_action: w.path(billing, "/upgrade"),
            bind_action: w.path(billing, "/account/bind"),
            register_action: w.path(billing, "/account/register"),
            accept_action: w.path(billing, "/agreement/accept"),
            sites,
            site_name: cx.site.map_or_else(String::new, |s| s.name.clone()),
            user_name: w
                .state
                .bound_account()
                .map_or_else(String::new, |a| a.user_name.to_string()),
            bind_username: entered.bind_username,
            register_username: entered.register_username,
            register_email: entered.register_email,
            version: AGREEMENT_VERSION,
            request_id: new_command_id(),
            bind_id: new_command_id(),
            register_id: new_command_id(),
            accept_id: new_command_id(),
        },
    )
}

/// `GET /workspaces/{id}/upgrade` (owner): the current step; commercial: `303` to Billing.
pub(crate) async fn page(
    State(billing): State<Billing>,
    parts: Parts,
    Path(id): Path<String>,
) -> Reply {
    let session = signed_in(&billing, &parts).await?;
    let w = load(&billing, &session, &id).await?;
    owner_only(&billing, &session, &w)?;
    Ok(upgrade_page(
        &billing,
        &session,
        &w,
        None,
        Entered::default(),
    ))
}

/// Where a successful upgrade step leads.
enum Next {
    /// The upgrade page's next step.
    NextStep,
    /// After the agreement: the cloud-account offer, or Billing on a site without one.
    Upgraded,
}

/// Sends `action` (or shows why the form's values are not valid) and answers `303` to the next
/// page, or the step's page again with the refusal in words.
async fn run<T>(
    billing: &Billing,
    posted: &Posted<T>,
    w: Loaded,
    action: Result<Action, DomainError>,
    entered: Entered,
    next: Next,
) -> Reply {
    let session = &posted.session;
    let action = match action {
        Ok(action) => action,
        Err(e) => {
            let said = Said::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                words::domain(&e, w.cx(billing)),
            );
            return Ok(upgrade_page(billing, session, &w, Some(said), entered));
        }
    };
    match billing
        .execute_as(&session.identity, &w.id, &posted.command_id, action)
        .await
    {
        Ok(done) => {
            let location = match next {
                Next::NextStep => w.path(billing, "/upgrade"),
                Next::Upgraded => {
                    let offers_cloud = done
                        .view
                        .site
                        .as_ref()
                        .and_then(|s| billing.policy().site(s).ok())
                        .is_some_and(|s| s.default_cloud_method.is_some());
                    if offers_cloud && done.view.plan == Plan::Commercial {
                        w.path(billing, "/upgraded")
                    } else {
                        w.path(billing, "")
                    }
                }
            };
            Ok(see_other(&location))
        }
        Err(e) => {
            let said = words::refusal(&e, w.cx(billing));
            if said.status == StatusCode::FORBIDDEN {
                return Ok(refused_page(billing, session, &w, said));
            }
            // Show the step the workspace is at now (another tab may have moved it on).
            let w = match billing.read(&w.id).await {
                Ok((state, _, _)) => Loaded { state, ..w },
                Err(_) => w,
            };
            Ok(upgrade_page(billing, session, &w, Some(said), entered))
        }
    }
}

/// `POST /workspaces/{id}/upgrade`: request the upgrade on a site.
pub(crate) async fn request(
    State(billing): State<Billing>,
    Path(id): Path<String>,
    request: Request,
) -> Reply {
    let posted = posted::<RequestForm>(&billing, request).await?;
    let w = load(&billing, &posted.session, &id).await?;
    let site = posted.form.site.clone().unwrap_or_default();
    let action = SiteId::parse(site.trim()).map(|site| Action::RequestUpgrade { site });
    let entered = Entered {
        site,
        ..Entered::default()
    };
    run(&billing, &posted, w, action, entered, Next::NextStep).await
}

/// `POST /workspaces/{id}/account/bind`: bind an existing Expense Center account.
pub(crate) async fn bind(
    State(billing): State<Billing>,
    Path(id): Path<String>,
    request: Request,
) -> Reply {
    let posted = posted::<AccountForm>(&billing, request).await?;
    let w = load(&billing, &posted.session, &id).await?;
    let username = posted.form.username.clone().unwrap_or_default();
    let action =
        UserName::parse(username.trim()).map(|user_name| Action::BindAccount { user_name });
    let entered = Entered {
        bind_username: username,
        ..Entered::default()
    };
    run(&billing, &posted, w, action, entered, Next::NextStep).await
}

/// `POST /workspaces/{id}/account/register`: register a new Expense Center account and bind it.
pub(crate) async fn register(
    State(billing): State<Billing>,
    Path(id): Path<String>,
    request: Request,
) -> Reply {
    let posted = posted::<AccountForm>(&billing, request).await?;
    let w = load(&billing, &posted.session, &id).await?;
    let username = posted.form.username.clone().unwrap_or_default();
    let email = posted.form.email.clone().unwrap_or_default();
    let action = UserName::parse(username.trim()).and_then(|user_name| {
        Ok(Action::RegisterAndBindAccount {
            user_name,
            email: Email::parse(email.trim())?,
        })
    });
    let entered = Entered {
        register_username: username,
        register_email: email,
        ..Entered::default()
    };
    run(&billing, &posted, w, action, entered, Next::NextStep).await
}

/// `POST /workspaces/{id}/agreement/accept`: accept the opening agreement (the box must be
/// ticked: else the same page, `422`, nothing written).
pub(crate) async fn accept(
    State(billing): State<Billing>,
    Path(id): Path<String>,
    request: Request,
) -> Reply {
    let posted = posted::<AcceptForm>(&billing, request).await?;
    let w = load(&billing, &posted.session, &id).await?;
    if posted.form.agree.as_deref().map(str::trim) != Some("yes") {
        let said = Said::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "agreement-not-ticked",
            "Tick the box to accept the opening agreement.",
        );
        return Ok(upgrade_page(
            &billing,
            &posted.session,
            &w,
            Some(said),
            Entered::default(),
        ));
    }
    let action = match posted.form.version.as_deref().map(str::trim) {
        None | Some("") => Err(DomainError::InvalidValue {
            field: "version",
            value: String::new(),
            reason: "must be given: reload the page to see the current agreement",
        }),
        Some(version) => {
            AgreementVersion::parse(version).map(|version| Action::AcceptAgreement { version })
        }
    };
    run(
        &billing,
        &posted,
        w,
        action,
        Entered::default(),
        Next::Upgraded,
    )
    .await
}
