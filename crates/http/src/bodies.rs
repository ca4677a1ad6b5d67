//! The API's request and response bodies, as the OpenAPI document describes them. Request
//! bodies refuse unknown fields (a `role` in a body is `422 invalid-value`: roles come from the
//! identity only).
//!
//! Each request body is its command's whole declaration in the API: its fields, and its
//! [`CommandBody`] impl — the route, the summary, and the [`Action`] its values make (each value
//! parsed into its domain type, a bad one `422 invalid-value` naming the field; the rules are the
//! domain's). `api::routes` lists them.

use billing_adapters::views::{EventEntry, FlatView};
use billing_adapters::BillingView;
use billing_domain::{
    Action, AgreementVersion, BillId, Currency, Email, ExternalId, MethodId, Money,
    SettlementRequest, SiteId, UserName,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::command::{parse, CommandBody, PathParameters};
use crate::problem::ApiError;

/// `POST …/upgrade`: request the upgrade on a site.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeBody {
    /// The site id (`cn1`, `cn2`, `cn4`, `us1`, …).
    #[schema(example = "us1")]
    pub site: String,
}

impl CommandBody for UpgradeBody {
    const OPERATION: &'static str = "upgrade";
    const PATH: &'static str = "/v1/workspaces/{id}/upgrade";
    const SUMMARY: &'static str = "Request the upgrade to the Commercial Plan on a site (owner)";

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        Ok(Action::RequestUpgrade {
            site: parse("site", &self.site, SiteId::parse)?,
        })
    }
}

/// `POST …/account/bind`: bind an existing Expense Center account.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindBody {
    /// The Expense Center user name (verified).
    #[schema(example = "acme-finance")]
    pub username: String,
}

impl CommandBody for BindBody {
    const OPERATION: &'static str = "bind_account";
    const PATH: &'static str = "/v1/workspaces/{id}/account/bind";
    const SUMMARY: &'static str =
        "Bind an existing, verified Expense Center account by user name (owner)";
    const REFUSALS: &'static str = "unknown-user-name";

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        Ok(Action::BindAccount {
            user_name: parse("username", &self.username, UserName::parse)?,
        })
    }
}

/// `POST …/account/register`: register a new Expense Center account and bind it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The new user name (must not be taken).
    #[schema(example = "acme-finance")]
    pub username: String,
    /// The account's e-mail address.
    #[schema(example = "finance@acme.example")]
    pub email: String,
}

impl CommandBody for RegisterBody {
    const OPERATION: &'static str = "register_account";
    const PATH: &'static str = "/v1/workspaces/{id}/account/register";
    const SUMMARY: &'static str = "Register a new Expense Center account and bind it (owner)";
    const REFUSALS: &'static str = "user-name-taken";

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        Ok(Action::RegisterAndBindAccount {
            user_name: parse("username", &self.username, UserName::parse)?,
            email: parse("email", &self.email, Email::parse)?,
        })
    }
}

/// `POST …/agreement/accept`: accept the opening agreement, which upgrades the workspace.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The agreement version.
    #[schema(example = "2024-06")]
    pub version: String,
}

impl CommandBody for AcceptBody {
    const OPERATION: &'static str = "accept_agreement";
    const PATH: &'static str = "/v1/workspaces/{id}/agreement/accept";
    const SUMMARY: &'static str = "Accept the opening agreement: the upgrade, for good (owner)";

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        Ok(Action::AcceptAgreement {
            version: parse("version", &self.version, AgreementVersion::parse)?,
        })
    }
}

/// `POST …/settlement`: change how the workspace settles.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementBody {
    /// `enterprise`, or a cloud method the site allows (`alibaba-cloud`, `aws`).
    #[schema(example = "aws")]
    pub method: String,
    /// The cloud account id (cloud methods only).
    #[serde(default)]
    #[schema(example = "123456789012")]
    pub account: Option<String>,
    /// The marketplace instance id (Alibaba Cloud).
    #[serde(default)]
    pub instance: Option<String>,
}

impl CommandBody for SettlementBody {
    const OPERATION: &'static str = "change_settlement";
    const PATH: &'static str = "/v1/workspaces/{id}/settlement";
    const SUMMARY: &'static str =
        "Change how the workspace settles (owner; at most once a calendar month)";
    const REFUSALS: &'static str =
        "settlement-change-too-soon, cloud-settlement-locked-in, invalid-settlement-request";

    /// The method and the ids as given (an empty string is a field not given); which of them a
    /// method takes is the domain's rule.
    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        let given = |field: &str, value: Option<String>| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| parse(field, &v, ExternalId::parse))
                .transpose()
        };
        Ok(Action::ChangeSettlement(SettlementRequest::new(
            parse("method", &self.method, MethodId::parse)?,
            given("account", self.account)?,
            given("instance", self.instance)?,
        )))
    }
}

/// `POST …/arrears` (the billing system): a bill in arrears.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrearsBody {
    /// The bill id.
    #[schema(example = "b-1")]
    pub bill: String,
    /// The amount owed, a decimal with at most two fraction digits.
    #[schema(example = "12.34")]
    pub amount: String,
    /// `CNY` or `USD`.
    #[schema(example = "CNY")]
    pub currency: String,
}

impl CommandBody for ArrearsBody {
    const OPERATION: &'static str = "record_arrears";
    const PATH: &'static str = "/v1/workspaces/{id}/arrears";
    const SUMMARY: &'static str = "Report a bill in arrears (the billing system only)";
    const REFUSALS: &'static str = "not-billing-system, arrears-already-recorded";

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        let currency: Currency = parse("currency", &self.currency, str::parse)?;
        Ok(Action::RecordArrears {
            bill: parse("bill", &self.bill, BillId::parse)?,
            amount: parse("amount", &self.amount, |a| {
                Money::parse_decimal(a, currency)
            })?,
        })
    }
}

/// `POST …/arrears/{bill}/settle`: the bill was paid by a recharge.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleArrearsBody {
    /// The Huawei Cloud stored-value card order that paid the recharge, if one did.
    #[serde(default)]
    pub stored_value_card: Option<String>,
}

impl CommandBody for SettleArrearsBody {
    const OPERATION: &'static str = "settle_arrears";
    const PATH: &'static str = "/v1/workspaces/{id}/arrears/{bill}/settle";
    const SUMMARY: &'static str =
        "Settle a bill in arrears by a recharge (the owner or the billing system)";
    const REFUSALS: &'static str = "unknown-arrears";
    const BODY: Option<&'static str> = Some("Empty, {} or the stored-value card order");
    const PATH_PARAMETERS: &'static [(&'static str, &'static str)] = &[("bill", "The bill id")];

    fn action(self, path: &PathParameters) -> Result<Action, ApiError> {
        Ok(Action::SettleArrears {
            bill: parse("bill", path.get("bill"), BillId::parse)?,
            stored_value_card: self
                .stored_value_card
                .as_deref()
                .map(|c| parse("stored_value_card", c, ExternalId::parse))
                .transpose()?,
        })
    }
}

/// `POST …/dissolve`: no fields (an empty body or `{}`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DissolveBody {}

impl CommandBody for DissolveBody {
    const OPERATION: &'static str = "dissolve";
    const PATH: &'static str = "/v1/workspaces/{id}/dissolve";
    const SUMMARY: &'static str = "Dissolve the workspace during a countdown (owner; irreversible)";
    const REFUSALS: &'static str = "not-in-countdown";
    const BODY: Option<&'static str> = Some("Empty, or {}");

    fn action(self, _: &PathParameters) -> Result<Action, ApiError> {
        let DissolveBody {} = self;
        Ok(Action::Dissolve)
    }
}

/// A command's outcome: the events it wrote and the billing view right after them. A replay
/// (the same `Idempotency-Key` and content) answers the same, with `Idempotent-Replayed: true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandResponse {
    /// The workspace.
    pub workspace_id: String,
    /// The command id (the `Idempotency-Key`).
    pub command_id: String,
    /// The events written.
    pub events: Vec<EventEntry>,
    /// The billing view right after them.
    #[schema(value_type = FlatView)]
    pub view: BillingView,
}

/// `GET …/history`: the workspace's events, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryResponse {
    /// The workspace.
    pub workspace_id: String,
    /// Its events.
    pub events: Vec<EventEntry>,
}
