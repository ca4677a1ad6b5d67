//! Validated value types: identities, names and versions that commands and events carry.
//!
//! Every type here is parsed once at the edge (`parse`, `FromStr` or serde) and is valid from then
//! on; a bad value is refused with [`DomainError::InvalidValue`] naming the field and the value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Longest accepted free-text identifier (actor ids, account ids, instance ids).
pub const MAX_ID_LEN: usize = 128;

fn invalid(field: &'static str, value: &str, reason: &'static str) -> DomainError {
    DomainError::InvalidValue {
        field,
        value: value.to_owned(),
        reason,
    }
}

/// Checks a free-text identifier: non-empty, at most [`MAX_ID_LEN`] characters, printable ASCII
/// without spaces or quotes.
fn check_id(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    if value.chars().count() > MAX_ID_LEN {
        return Err(invalid(field, value, "must be at most 128 characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\'' && c != '\\' && c != '`')
    {
        return Err(invalid(
            field,
            value,
            "may contain only printable ASCII characters without spaces, quotes or backslashes",
        ));
    }
    Ok(())
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the value.
            ///
            /// # Errors
            /// [`DomainError::InvalidValue`] naming the field, the value and what is wrong with it.
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                let check: fn(&'static str, &str) -> Result<(), DomainError> = $check;
                check($field, value)?;
                Ok(Self(value.to_owned()))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(value: String) -> Result<Self, DomainError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(value: &str) -> Result<Self, DomainError> {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// The id of the person acting, as the host application knows them.
    ActorId,
    "actor",
    check_id
);

string_value!(
    /// An Expense Center user name: 3 to 64 characters, letters, digits and `. _ - @`, starting
    /// with a letter or digit. Case-sensitive, as the Expense Center stores it.
    UserName,
    "username",
    |field, value| {
        let len = value.chars().count();
        if !(3..=64).contains(&len) {
            return Err(invalid(field, value, "must be 3 to 64 characters long"));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(invalid(field, value, "must start with a letter or a digit"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err(invalid(
                field,
                value,
                "may contain only letters, digits and . _ - @",
            ));
        }
        Ok(())
    }
);

string_value!(
    /// An e-mail address for a new Expense Center account (`local@domain`, at most 254 characters).
    Email,
    "email",
    |field, value| {
        if value.is_empty() || value.len() > 254 {
            return Err(invalid(field, value, "must be 1 to 254 characters long"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(invalid(field, value, "must contain an @"));
        };
        if local.is_empty() || domain.is_empty() || !domain.contains('.') {
            return Err(invalid(field, value, "must look like name@example.com"));
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid(field, value, "must look like name@example.com"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '`' | '<' | '>'))
        {
            return Err(invalid(
                field,
                value,
                "may contain only printable ASCII characters without quotes, brackets or spaces",
            ));
        }
        Ok(())
    }
);

string_value!(
    /// The version of the opening agreement the owner accepted (e.g. `2024-06`): 1 to 32
    /// characters, letters, digits and `. _ -`.
    AgreementVersion,
    "version",
    |field, value| {
        if value.is_empty() || value.len() > 32 {
            return Err(invalid(field, value, "must be 1 to 32 characters long"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                field,
                value,
                "may contain only letters, digits and . _ -",
            ));
        }
        Ok(())
    }
);

fn check_slug(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() || value.len() > 32 {
        return Err(invalid(field, value, "must be 1 to 32 characters long"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(
            field,
            value,
            "may contain only lowercase letters, digits and -",
        ));
    }
    Ok(())
}

string_value!(
    /// A site id such as `cn1` or `us1`; which sites exist is decided by the
    /// [`SitePolicy`](crate::SitePolicy), not by this type.
    SiteId,
    "site",
    check_slug
);

string_value!(
    /// A settlement method id such as `enterprise`, `alibaba-cloud` or `aws`; which methods exist
    /// is decided by the [`SitePolicy`](crate::SitePolicy), not by this type.
    MethodId,
    "method",
    check_slug
);

string_value!(
    /// A workspace id (the aggregate id): 1 to 128 characters, letters, digits and `. _ : -`.
    WorkspaceId,
    "workspace",
    |field, value| {
        if value.is_empty() || value.len() > MAX_ID_LEN {
            return Err(invalid(field, value, "must be 1 to 128 characters long"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        {
            return Err(invalid(
                field,
                value,
                "may contain only letters, digits and . _ : -",
            ));
        }
        Ok(())
    }
);

string_value!(
    /// An id at an outside system: a cloud account (Alibaba Cloud UID, AWS account id), a
    /// marketplace instance or an Expense Center account.
    ExternalId,
    "account",
    check_id
);

string_value!(
    /// The Expense Center's id for a bill in arrears.
    BillId,
    "bill",
    check_id
);

/// A currency an Expense Center bill is in. Amounts are kept in its minor unit (fen, cent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    /// Chinese yuan (renminbi); minor unit fen, 1/100.
    #[serde(rename = "CNY")]
    Cny,
    /// US dollar; minor unit cent, 1/100.
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// Every currency.
    pub const ALL: [Currency; 2] = [Currency::Cny, Currency::Usd];

    /// The ISO 4217 code (`CNY`, `USD`).
    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self, DomainError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.as_str() == value)
            .ok_or_else(|| invalid("currency", value, "must be CNY or USD"))
    }
}

/// An amount of money owed: a positive number of minor units (fen, cents) in a currency. Its
/// fields are in byte order of their names, so it serializes as canonical JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyFields")]
pub struct Money {
    /// The currency.
    pub currency: Currency,
    /// The amount in minor units (1234 is 12.34); always at least 1.
    pub minor: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyFields {
    currency: Currency,
    minor: u64,
}

impl TryFrom<MoneyFields> for Money {
    type Error = DomainError;
    fn try_from(fields: MoneyFields) -> Result<Self, DomainError> {
        Money::new(fields.minor, fields.currency)
    }
}

impl Money {
    /// An amount of `minor` units of `currency`.
    ///
    /// # Errors
    /// [`DomainError::InvalidValue`] for zero: arrears are a positive amount.
    pub fn new(minor: u64, currency: Currency) -> Result<Self, DomainError> {
        if minor == 0 {
            return Err(invalid("amount", "0", "must be more than zero"));
        }
        Ok(Self { minor, currency })
    }

    /// Parses a decimal amount as people write it (`12.34`, `12.3`, `12`): digits, at most two
    /// after the point, more than zero.
    ///
    /// # Errors
    /// [`DomainError::InvalidValue`] naming the amount and what is wrong with it.
    pub fn parse_decimal(value: &str, currency: Currency) -> Result<Self, DomainError> {
        let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(invalid(
                "amount",
                value,
                "must be a decimal number such as 12.34 (digits, one point, no sign)",
            ));
        }
        if fraction.len() > 2 || (value.contains('.') && fraction.is_empty()) {
            return Err(invalid(
                "amount",
                value,
                "must have one or two digits after the point (minor units are 1/100)",
            ));
        }
        let cents = format!("{fraction:0<2}");
        let minor = whole
            .parse::<u64>()
            .ok()
            .and_then(|w| w.checked_mul(100))
            .and_then(|w| w.checked_add(cents.parse::<u64>().unwrap_or(0)))
            .ok_or_else(|| invalid("amount", value, "is too large"))?;
        if minor == 0 {
            return Err(invalid("amount", value, "must be more than zero"));
        }
        Ok(Self { minor, currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor / 100,
            self.minor % 100,
            self.currency
        )
    }
}

impl MethodId {
    /// The id of the Expense Center (enterprise) settlement method, which every site allows.
    pub const ENTERPRISE: &'static str = "enterprise";

    /// The enterprise method id.
    pub fn enterprise() -> Self {
        Self(Self::ENTERPRISE.to_owned())
    }

    /// Whether this is the enterprise method.
    pub fn is_enterprise(&self) -> bool {
        self.0 == Self::ENTERPRISE
    }
}

/// The role an actor holds in the workspace, as the host application asserts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The workspace owner: the only role that may upgrade or change settlement.
    Owner,
    /// A workspace administrator.
    Admin,
    /// An ordinary member.
    Member,
    /// The billing system itself (never a workspace member): the only role that may report
    /// Expense Center and marketplace facts (arrears, ended subscriptions) and fire deadlines.
    System,
}

impl Role {
    /// All roles: the three workspace roles in order of privilege, then the billing system.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::System];

    /// The role's name as used in commands, metadata and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self, DomainError> {
        match value {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "system" => Ok(Role::System),
            _ => Err(invalid(
                "role",
                value,
                "must be one of owner, admin, member, system",
            )),
        }
    }
}

/// Who sends a command: an actor id and that actor's role in the workspace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's id.
    pub id: ActorId,
    /// The actor's role in the workspace.
    pub role: Role,
}

impl Actor {
    /// An actor with the given id and role.
    pub fn new(id: ActorId, role: Role) -> Self {
        Self { id, role }
    }
}

/// A cloud account that settles a workspace: the account id at the provider and, where the
/// provider needs it (Alibaba Cloud), the marketplace instance id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CloudAccount {
    /// The account id at the provider (Alibaba Cloud UID, AWS account id).
    pub account_id: ExternalId,
    /// The marketplace instance id, for providers that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<ExternalId>,
}

impl fmt::Display for CloudAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.instance_id {
            Some(instance) => write!(f, "{} (instance {})", self.account_id, instance),
            None => write!(f, "{}", self.account_id),
        }
    }
}

/// How a commercial workspace settles its bills.
///
/// A method that needs a cloud account carries it, so "settles through AWS without an AWS
/// account" cannot be written down. Serialized as `{"enterprise":{"user_name":…}}` or
/// `{"cloud":{"account":{…},"method":…}}` (fields in byte order: canonical JSON as written).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Settlement {
    /// Through the bound Expense Center account (the default after the upgrade).
    Enterprise {
        /// The bound Expense Center user name.
        user_name: UserName,
    },
    /// Through a cloud marketplace account.
    Cloud {
        /// The cloud account.
        account: CloudAccount,
        /// The settlement method (a cloud provider id such as `aws`).
        method: MethodId,
    },
}

impl Settlement {
    /// The settlement method id (`enterprise` or the cloud provider's id).
    pub fn method(&self) -> MethodId {
        match self {
            Settlement::Enterprise { .. } => MethodId::enterprise(),
            Settlement::Cloud { method, .. } => method.clone(),
        }
    }

    /// The cloud method and account, if this settles through a cloud account.
    pub fn cloud(&self) -> Option<(&MethodId, &CloudAccount)> {
        match self {
            Settlement::Enterprise { .. } => None,
            Settlement::Cloud { method, account } => Some((method, account)),
        }
    }
}

impl fmt::Display for Settlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Settlement::Enterprise { user_name } => write!(f, "enterprise ({user_name})"),
            Settlement::Cloud { method, account } => write!(f, "{method} ({account})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_rules_name_the_field_and_value() {
        assert!(UserName::parse("alice.w").is_ok());
        let err = UserName::parse("a b").unwrap_err();
        assert_eq!(err.code(), "invalid-value");
        let text = err.to_string();
        assert!(text.contains("username") && text.contains("a b"), "{text}");
        assert!(UserName::parse("ab").is_err());
        assert!(UserName::parse("-abc").is_err());
        assert!(UserName::parse(&"x".repeat(65)).is_err());
        assert!(UserName::parse("名字abc").is_err());
    }

    #[test]
    fn ids_refuse_quotes_controls_and_overlong_values() {
        for bad in ["", "a'b", "a\"b", "a\nb", "a b", "x\\y"] {
            assert!(ActorId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ExternalId::parse(&"1".repeat(129)).is_err());
        assert!(ExternalId::parse("123456789012").is_ok());
        for bad in ["", "ws'1", "ws;drop", "ws 1", "ws\u{7}", "ws/1"] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(WorkspaceId::parse("acme:prod_1.eu-2").is_ok());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: UserName = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(ok.as_str(), "alice");
        assert!(serde_json::from_str::<UserName>("\"a\"").is_err());
        assert!(serde_json::from_str::<SiteId>("\"CN1\"").is_err());
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn amounts_parse_in_minor_units_and_print_back() {
        let cny = |s| Money::parse_decimal(s, Currency::Cny);
        assert_eq!(cny("12.34").unwrap().minor, 1234);
        assert_eq!(cny("12.3").unwrap().minor, 1230);
        assert_eq!(cny("12").unwrap().minor, 1200);
        assert_eq!(cny("0.01").unwrap().minor, 1);
        assert_eq!(cny("12.34").unwrap().to_string(), "12.34 CNY");
        assert_eq!(cny("0.05").unwrap().to_string(), "0.05 CNY");
        for bad in [
            "",
            "-1",
            "1.234",
            "1.",
            ".5",
            "0",
            "0.00",
            "1,5",
            "1e3",
            "99999999999999999999",
        ] {
            let err = cny(bad).unwrap_err();
            assert!(err.to_string().contains("amount"), "{bad:?}: {err}");
        }
        assert!(Money::new(0, Currency::Usd).is_err());
        assert_eq!(
            Money::new(7, Currency::Usd).unwrap().to_string(),
            "0.07 USD"
        );
        for c in Currency::ALL {
            assert_eq!(c.as_str().parse::<Currency>().unwrap(), c);
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
        assert!("cny".parse::<Currency>().is_err());
    }

    #[test]
    fn emails_need_a_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        for bad in ["a", "a@", "@b.c", "a@b", "a@.b", "a b@c.d"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
