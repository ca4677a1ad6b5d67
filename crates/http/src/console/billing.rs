//! The workspaces list, Billing, and the page after the upgrade; and loading a workspace for a
//! page (its id, its state, the caller's role in it).

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use billing_domain::{Actor, Permission, Plan, Role, UpgradeStep, Workspace, WorkspaceId};

use super::pages::{
    error_page, error_page_with, BillingPage, Layout, Link, UpgradedPage, WorkspaceRow,
    WorkspacesPage,
};
use super::session::{new_command_id, signed_in, Session};
use super::words::{self, Cx, Said};
use super::{html, see_other, Reply, Stop};
use crate::problem::ApiError;
use crate::Billing;

/// A workspace as a page needs it.
pub(crate) struct Loaded {
    /// Its id.
    pub(crate) id: WorkspaceId,
    /// Its state (the Experience Plan's fresh state without events).
    pub(crate) state: Workspace,
    /// The caller's role in it.
    pub(crate) role: Role,
}

impl Loaded {
    /// The words' context for this workspace.
    pub(crate) fn cx<'a>(&'a self, billing: &'a Billing) -> Cx<'a> {
        Cx::new(billing.policy(), self.state.site())
    }

    /// A console path under this workspace (`tail` starts with `/`, or is empty).
    pub(crate) fn path(&self, billing: &Billing, tail: &str) -> String {
        billing.path(&format!("/workspaces/{}{tail}", self.id))
    }

    /// The link back to this workspace's Billing page.
    pub(crate) fn back_to_billing(&self, billing: &Billing) -> Link {
        Link {
            href: self.path(billing, ""),
            text: "Back to Billing".to_owned(),
        }
    }

    /// A page that has nothing to show here: `error` in words with a link back to Billing, or
    /// without one, a redirect to Billing.
    pub(crate) fn to_billing(
        &self,
        billing: &Billing,
        session: &Session,
        error: Option<Said>,
    ) -> Response {
        match error {
            Some(said) => {
                error_page_with(billing, Some(session), said, self.back_to_billing(billing))
            }
            None => see_other(&self.path(billing, "")),
        }
    }
}

/// The workspace `id` for `session`: `422` for an id that is not one, `403` without a role in
/// it, the store's errors in words.
pub(crate) async fn load(billing: &Billing, session: &Session, id: &str) -> Result<Loaded, Stop> {
    let cx = Cx::new(billing.policy(), None);
    let id = WorkspaceId::parse(id).map_err(|e| {
        Stop::from(error_page(
            billing,
            Some(session),
            Said::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                words::domain(&e, cx),
            ),
        ))
    })?;
    let refused =
        |e: ApiError| Stop::from(error_page(billing, Some(session), words::refusal(&e, cx)));
    billing.may_read(&session.identity, &id).map_err(refused)?;
    let role = session.identity.role_in(&id).unwrap_or(Role::Member);
    let (state, _, _) = billing.read(&id).await.map_err(refused)?;
    Ok(Loaded { id, state, role })
}

/// Whether the caller may see the owner's forms (the upgrade flow, settlement): the domain's
/// rule for who sends their commands; its refusal (`403 not-workspace-owner`) in words, with a
/// link back to Billing. The commands themselves are decided by the domain when they are sent.
pub(crate) fn owner_only(billing: &Billing, session: &Session, w: &Loaded) -> Result<(), Stop> {
    let actor = Actor::new(session.identity.actor.clone(), w.role);
    match Permission::Owner.check(&actor) {
        Ok(()) => Ok(()),
        Err(e) => Err(refused_page(
            billing,
            session,
            w,
            Said::new(
                StatusCode::FORBIDDEN,
                e.code(),
                words::domain(&e, w.cx(billing)),
            ),
        )
        .into()),
    }
}

/// A refusal that leaves nothing to do on the page it came from (the caller's role does not
/// allow it): the refusal in words on a page of its own, with a link back to Billing.
pub(crate) fn refused_page(
    billing: &Billing,
    session: &Session,
    w: &Loaded,
    said: Said,
) -> Response {
    error_page_with(billing, Some(session), said, w.back_to_billing(billing))
}

/// `GET /`: the caller's workspaces; exactly one: `303` straight to it.
pub(crate) async fn workspaces(State(billing): State<Billing>, parts: Parts) -> Reply {
    let session = signed_in(&billing, &parts).await?;
    let rows: Vec<WorkspaceRow> = session
        .identity
        .workspaces()
        .into_iter()
        .map(|(id, role)| WorkspaceRow {
            href: billing.path(&format!("/workspaces/{id}")),
            id: id.to_string(),
            role: role.to_string(),
        })
        .collect();
    if let [only] = rows.as_slice() {
        return Ok(see_other(&only.href));
    }
    Ok(html(
        StatusCode::OK,
        &WorkspacesPage {
            layout: Layout::new(&billing, "Workspaces", Some(&session)),
            system: session.identity.is_system(),
            workspaces: rows,
        },
    ))
}

/// `GET /workspaces/{id}`: Billing.
pub(crate) async fn billing(
    State(billing): State<Billing>,
    parts: Parts,
    Path(id): Path<String>,
) -> Reply {
    let session = signed_in(&billing, &parts).await?;
    let w = load(&billing, &session, &id).await?;
    let policy = billing.policy();
    let cx = w.cx(&billing);
    let state = &w.state;
    let commercial = state.plan() == Plan::Commercial;
    let in_progress = matches!(
        state.upgrade_step(),
        UpgradeStep::Requested | UpgradeStep::AccountBound | UpgradeStep::AgreementAccepted
    );
    let expense_center_href = state.bound_account().map_or_else(String::new, |a| {
        format!(
            "{}/accounts/{}",
            billing
                .inner
                .options
                .expense_center_url
                .trim_end_matches('/'),
            a.user_name
        )
    });
    let page = BillingPage {
        layout: Layout::new(&billing, "Billing", Some(&session)),
        id: w.id.to_string(),
        plan: state.plan().display_name(),
        commercial,
        owner: w.role == Role::Owner,
        role: w.role.to_string(),
        upgrade_text: if in_progress {
            "Continue upgrade"
        } else {
            "Upgrade"
        },
        upgrade_href: w.path(&billing, "/upgrade"),
        site: cx.site.map(|s| s.name.clone()),
        expense_center_href,
        settlement: state
            .settlement()
            .map_or_else(String::new, |s| words::settlement(policy, s)),
        settlement_href: w.path(&billing, "/settlement"),
        standing: words::standing(state.standing(), state.reasons(), cx),
        upgraded_at: state
            .upgraded_at()
            .map_or_else(String::new, |t| words::when(t, cx.site)),
    };
    Ok(html(StatusCode::OK, &page))
}

/// The page after the upgrade, with the cloud form's last values and why it was refused; `None`
/// when the workspace's site offers no cloud account.
pub(crate) fn upgraded_page(
    billing: &Billing,
    session: &Session,
    w: &Loaded,
    error: Option<Said>,
    account: &str,
    instance: &str,
) -> Option<Response> {
    let policy = billing.policy();
    let method = w.cx(billing).site?.default_cloud_method.clone()?;
    let requires_instance = policy.method(&method).is_some_and(|m| m.requires_instance);
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    Some(html(
        status,
        &UpgradedPage {
            layout: Layout::new(billing, "Commercial Plan", Some(session)),
            id: w.id.to_string(),
            error,
            provider: words::provider(policy, &method),
            method: method.to_string(),
            requires_instance,
            action: w.path(billing, "/settlement"),
            billing_href: w.path(billing, ""),
            csrf: session.csrf.clone(),
            command_id: new_command_id(),
            account: account.to_owned(),
            instance: instance.to_owned(),
        },
    ))
}

/// `GET /workspaces/{id}/upgraded` (owner): success, and "Bind Settlement Cloud Account" on a
/// site that offers one (else `303` to Billing); before the upgrade, `303` to the upgrade page.
pub(crate) async fn upgraded(
    State(billing): State<Billing>,
    parts: Parts,
    Path(id): Path<String>,
) -> Reply {
    let session = signed_in(&billing, &parts).await?;
    let w = load(&billing, &session, &id).await?;
    owner_only(&billing, &session, &w)?;
    if w.state.plan() != Plan::Commercial {
        return Ok(see_other(&w.path(&billing, "/upgrade")));
    }
    Ok(upgraded_page(&billing, &session, &w, None, "", "")
        .unwrap_or_else(|| see_other(&w.path(&billing, ""))))
}
