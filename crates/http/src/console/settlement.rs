//! The settlement page (owner only) and its form, which the cloud-account form after the upgrade
//! also posts to. A refusal shows the page it came from again, the refusal in words.

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use billing_domain::{Action, DomainError, ExternalId, MethodId, Plan, SettlementRequest};
use serde::Deserialize;

use super::billing::{load, owner_only, refused_page, upgraded_page, Loaded};
use super::pages::{Choice, Layout, SettlementPage};
use super::session::{form_fields, new_command_id, posted, signed_in, Session};
use super::words::{self, Said};
use super::{html, see_other, Reply};
use crate::Billing;

/// The settlement form (and the cloud-account form, which sends `from=upgraded`).
#[derive(Debug, Deserialize)]
pub(crate) struct SettlementForm {
    /// The method id.
    method: Option<String>,
    /// The cloud account id.
    account: Option<String>,
    /// The marketplace instance id.
    instance: Option<String>,
    /// `upgraded` when sent from the page after the upgrade.
    from: Option<String>,
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id.
    command_id: Option<String>,
}

form_fields!(SettlementForm);

/// The settlement page, saying `error` (with its status), the form holding what was last sent;
/// before the upgrade, `303` to Billing (an error then is shown on a page of its own).
fn settlement_page(
    billing: &Billing,
    session: &Session,
    w: &Loaded,
    error: Option<Said>,
    form: Option<&SettlementForm>,
) -> Response {
    let Some(current) = w.state.settlement() else {
        return w.to_billing(billing, session, error);
    };
    let policy = billing.policy();
    let cx = w.cx(billing);
    let chosen = form
        .and_then(|f| f.method.clone())
        .unwrap_or_else(|| current.method().to_string());
    let methods = cx
        .site
        .map(|s| s.allowed_methods.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| Choice {
            value: m.to_string(),
            text: words::method_label(policy, m),
            selected: m.as_str() == chosen,
        })
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    html(
        status,
        &SettlementPage {
            layout: Layout::new(billing, "Settlement", Some(session)),
            id: w.id.to_string(),
            error,
            settlement: words::settlement(policy, current),
            site_name: cx.site.map_or_else(String::new, |s| s.name.clone()),
            time_zone: cx
                .site
                .map_or_else(|| "UTC".to_owned(), |s| s.time_zone.name().to_owned()),
            methods,
            action: w.path(billing, "/settlement"),
            billing_href: w.path(billing, ""),
            csrf: session.csrf.clone(),
            command_id: new_command_id(),
            account: form.and_then(|f| f.account.clone()).unwrap_or_default(),
            instance: form.and_then(|f| f.instance.clone()).unwrap_or_default(),
        },
    )
}

/// `GET /workspaces/{id}/settlement` (owner): the current settlement and the form; before the
/// upgrade, `303` to Billing.
pub(crate) async fn page(
    State(billing): State<Billing>,
    parts: Parts,
    Path(id): Path<String>,
) -> Reply {
    let session = signed_in(&billing, &parts).await?;
    let w = load(&billing, &session, &id).await?;
    owner_only(&billing, &session, &w)?;
    Ok(settlement_page(&billing, &session, &w, None, None))
}

/// A non-empty, trimmed form value.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The settlement the form asks for: the method chosen, and the account and instance ids as
/// typed (an empty field is one not given). Which of them the method takes is the domain's rule,
/// so a wrong combination is refused here exactly as through the API and the CLI.
fn settlement_action(form: &SettlementForm) -> Result<Action, DomainError> {
    let Some(method) = given(form.method.as_deref()) else {
        return Err(DomainError::InvalidValue {
            field: "method",
            value: String::new(),
            reason: "must be chosen",
        });
    };
    let id = |field: &'static str, value: Option<&str>| {
        given(value)
            .map(|v| {
                ExternalId::parse(v).map_err(|e| match e {
                    DomainError::InvalidValue { value, reason, .. } => DomainError::InvalidValue {
                        field,
                        value,
                        reason,
                    },
                    other => other,
                })
            })
            .transpose()
    };
    Ok(Action::ChangeSettlement(SettlementRequest::new(
        MethodId::parse(method)?,
        id("account", form.account.as_deref())?,
        id("instance", form.instance.as_deref())?,
    )))
}

/// `POST /workspaces/{id}/settlement`: change the settlement; `303` to Billing, or the page it
/// was sent from again with the refusal in words.
pub(crate) async fn change(
    State(billing): State<Billing>,
    Path(id): Path<String>,
    request: Request,
) -> Reply {
    let posted = posted::<SettlementForm>(&billing, request).await?;
    let session = &posted.session;
    let w = load(&billing, session, &id).await?;
    let form = &posted.form;
    let said = match settlement_action(form) {
        Err(e) => Said::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            words::domain(&e, w.cx(&billing)),
        ),
        Ok(action) => match billing
            .execute_as(&session.identity, &w.id, &posted.command_id, action)
            .await
        {
            Ok(_) => return Ok(see_other(&w.path(&billing, ""))),
            Err(e) => words::refusal(&e, w.cx(&billing)),
        },
    };
    if said.status == StatusCode::FORBIDDEN {
        return Ok(refused_page(&billing, session, &w, said));
    }
    // Show the workspace as it is now (another tab may have changed it).
    let w = match billing.read(&w.id).await {
        Ok((state, _, _)) => Loaded { state, ..w },
        Err(_) => w,
    };
    if form.from.as_deref() == Some("upgraded") && w.state.plan() == Plan::Commercial {
        let account = form.account.as_deref().unwrap_or_default();
        let instance = form.instance.as_deref().unwrap_or_default();
        if let Some(page) =
            upgraded_page(&billing, session, &w, Some(said.clone()), account, instance)
        {
            return Ok(page);
        }
    }
    Ok(settlement_page(
        &billing,
        session,
        &w,
        Some(said),
        Some(form),
    ))
}
