//! The console's pages: one askama template (under `templates/`) per struct, all extending
//! `_base.html`. Every value is escaped by the templates.

use askama::Template;
use axum::response::Response;

use super::html;
use super::session::{new_command_id, Session};
use super::words::Said;
use crate::Billing;

/// What every page's frame shows: the title, the home link and, when signed in, who is and the
/// sign-out form.
pub(crate) struct Layout {
    /// The page title (the frame adds " · workspace-billing").
    pub(crate) title: String,
    /// The console's home link.
    pub(crate) home: String,
    /// The sign-out form's action.
    pub(crate) sign_out: String,
    /// Who is signed in, if anyone.
    pub(crate) bar: Option<Bar>,
}

/// The signed-in caller's bar: the actor and the sign-out form's hidden fields.
pub(crate) struct Bar {
    /// The actor id.
    pub(crate) actor: String,
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The sign-out form's command id.
    pub(crate) command_id: String,
}

impl Layout {
    /// The frame of a page titled `title`, for `session` if signed in.
    pub(crate) fn new(billing: &Billing, title: &str, session: Option<&Session>) -> Self {
        Self {
            title: title.to_owned(),
            home: billing.home(),
            sign_out: billing.path("/sign-out"),
            bar: session.map(|s| Bar {
                actor: s.identity.actor.to_string(),
                csrf: s.csrf.clone(),
                command_id: new_command_id(),
            }),
        }
    }
}

/// A link.
pub(crate) struct Link {
    /// Where to.
    pub(crate) href: String,
    /// Its text.
    pub(crate) text: String,
}

/// One `<option>` of a `<select>`.
pub(crate) struct Choice {
    /// The value sent.
    pub(crate) value: String,
    /// The text shown.
    pub(crate) text: String,
    /// Whether it is selected.
    pub(crate) selected: bool,
}

/// A page that only says what went wrong.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// What went wrong (always set).
    pub(crate) error: Option<Said>,
    /// Where to go from here.
    pub(crate) back: Link,
}

/// An error page saying `said`, with its status.
pub(crate) fn error_page(billing: &Billing, session: Option<&Session>, said: Said) -> Response {
    let back = match session {
        Some(_) => Link {
            href: billing.home(),
            text: "Back to your workspaces".to_owned(),
        },
        None => Link {
            href: billing.path("/sign-in"),
            text: "Sign in".to_owned(),
        },
    };
    error_page_with(billing, session, said, back)
}

/// An error page saying `said`, with its status, linking to `back`.
pub(crate) fn error_page_with(
    billing: &Billing,
    session: Option<&Session>,
    said: Said,
    back: Link,
) -> Response {
    let status = said.status;
    html(
        status,
        &ErrorPage {
            layout: Layout::new(billing, "Error", session),
            error: Some(said),
            back,
        },
    )
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub(crate) struct SignInPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// Why the last attempt failed.
    pub(crate) error: Option<Said>,
    /// The form's action.
    pub(crate) action: String,
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The form's command id (unused by the sign-in; every form carries one).
    pub(crate) command_id: String,
}

/// One workspace of the caller.
pub(crate) struct WorkspaceRow {
    /// The workspace id.
    pub(crate) id: String,
    /// Its Billing page.
    pub(crate) href: String,
    /// The caller's role in it.
    pub(crate) role: String,
}

/// The list of the caller's workspaces.
#[derive(Template)]
#[template(path = "workspaces.html")]
pub(crate) struct WorkspacesPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// The workspaces.
    pub(crate) workspaces: Vec<WorkspaceRow>,
    /// Whether the caller is the billing system (a role everywhere, none listed).
    pub(crate) system: bool,
}

/// Billing: the plan, the upgrade link, the settlement and the standing.
#[derive(Template)]
#[template(path = "billing.html")]
pub(crate) struct BillingPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// The workspace id.
    pub(crate) id: String,
    /// "Experience Plan" or "Commercial Plan".
    pub(crate) plan: &'static str,
    /// Whether on the Commercial Plan.
    pub(crate) commercial: bool,
    /// Whether the caller owns the workspace.
    pub(crate) owner: bool,
    /// The caller's role.
    pub(crate) role: String,
    /// "Upgrade" or "Continue upgrade".
    pub(crate) upgrade_text: &'static str,
    /// The upgrade page.
    pub(crate) upgrade_href: String,
    /// The site's name, once known.
    pub(crate) site: Option<String>,
    /// The Expense Center link of the bound account.
    pub(crate) expense_center_href: String,
    /// The settlement in words.
    pub(crate) settlement: String,
    /// The settlement page.
    pub(crate) settlement_href: String,
    /// The standing in words.
    pub(crate) standing: String,
    /// When it was upgraded, in words.
    pub(crate) upgraded_at: String,
}

/// The upgrade page, at one of its steps.
#[derive(Template)]
#[template(path = "upgrade.html")]
pub(crate) struct UpgradePage {
    /// The frame.
    pub(crate) layout: Layout,
    /// The workspace id.
    pub(crate) id: String,
    /// `request`, `account` or `agreement`.
    pub(crate) step: &'static str,
    /// Why the last submission was refused.
    pub(crate) error: Option<Said>,
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The Billing page.
    pub(crate) billing_href: String,
    /// The request form's action.
    pub(crate) request_action: String,
    /// The bind form's action.
    pub(crate) bind_action: String,
    /// The register form's action.
    pub(crate) register_action: String,
    /// The agreement form's action.
    pub(crate) accept_action: String,
    /// The sites to choose from.
    pub(crate) sites: Vec<Choice>,
    /// The site's name, once requested.
    pub(crate) site_name: String,
    /// The bound user name, once bound.
    pub(crate) user_name: String,
    /// The bind form's user name, as last sent.
    pub(crate) bind_username: String,
    /// The register form's user name, as last sent.
    pub(crate) register_username: String,
    /// The register form's e-mail address, as last sent.
    pub(crate) register_email: String,
    /// The agreement version shown.
    pub(crate) version: &'static str,
    /// One command id per form.
    pub(crate) request_id: String,
    /// The bind form's command id.
    pub(crate) bind_id: String,
    /// The register form's command id.
    pub(crate) register_id: String,
    /// The agreement form's command id.
    pub(crate) accept_id: String,
}

/// After the upgrade: success, and the offer to bind a settlement cloud account.
#[derive(Template)]
#[template(path = "upgraded.html")]
pub(crate) struct UpgradedPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// The workspace id.
    pub(crate) id: String,
    /// Why the last submission was refused.
    pub(crate) error: Option<Said>,
    /// The provider's name ("AWS", "Alibaba Cloud").
    pub(crate) provider: String,
    /// The cloud method id.
    pub(crate) method: String,
    /// Whether the method needs a marketplace instance id.
    pub(crate) requires_instance: bool,
    /// The form's action.
    pub(crate) action: String,
    /// The Billing page.
    pub(crate) billing_href: String,
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The form's command id.
    pub(crate) command_id: String,
    /// The account id, as last sent.
    pub(crate) account: String,
    /// The instance id, as last sent.
    pub(crate) instance: String,
}

/// The settlement page.
#[derive(Template)]
#[template(path = "settlement.html")]
pub(crate) struct SettlementPage {
    /// The frame.
    pub(crate) layout: Layout,
    /// The workspace id.
    pub(crate) id: String,
    /// Why the last submission was refused.
    pub(crate) error: Option<Said>,
    /// The current settlement in words.
    pub(crate) settlement: String,
    /// The site's name.
    pub(crate) site_name: String,
    /// The site's time zone (where calendar months are counted).
    pub(crate) time_zone: String,
    /// The methods the site allows.
    pub(crate) methods: Vec<Choice>,
    /// The form's action.
    pub(crate) action: String,
    /// The Billing page.
    pub(crate) billing_href: String,
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The form's command id.
    pub(crate) command_id: String,
    /// The account id, as last sent.
    pub(crate) account: String,
    /// The instance id, as last sent.
    pub(crate) instance: String,
}
