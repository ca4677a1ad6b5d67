//! Sites and settlement methods as data.
//!
//! The aggregate never names a site or a cloud provider: it asks the [`SitePolicy`] which methods a
//! site allows, whether a method is a cloud account and whether it needs an instance id, and in
//! which time zone the site counts calendar months. A host can load its own table (a new site, a
//! new method) with [`SitePolicy::from_json`] without touching the aggregate.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::values::{CloudAccount, ExternalId, MethodId, SiteId};

/// The kind of a settlement method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// Settles through the bound Expense Center account. Exactly one method has this kind.
    Enterprise,
    /// Settles through a cloud marketplace account.
    Cloud,
}

/// A settlement method the policy knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodSpec {
    /// The method id (`enterprise`, `aws`, …).
    pub id: MethodId,
    /// A human-readable name.
    pub name: String,
    /// Enterprise or cloud.
    pub kind: MethodKind,
    /// Whether a cloud account of this method needs a marketplace instance id.
    #[serde(default)]
    pub requires_instance: bool,
    /// What an ended subscription of this (cloud) method does to a workspace settling through
    /// it; absent means [`SubscriptionEnd::Lock`]. Meaningless for `enterprise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_subscription_end: Option<SubscriptionEnd>,
}

impl MethodSpec {
    /// The cloud account this method settles through, made of the ids given with it: `None` for
    /// enterprise, which takes neither (it settles through the bound Expense Center account); a
    /// cloud method takes its account id, and the marketplace instance id exactly when it
    /// [requires one](MethodSpec::requires_instance).
    ///
    /// # Errors
    /// What is missing or extra, in words, for the
    /// [`invalid-settlement-request`](DomainError::InvalidSettlementRequest) refusal.
    pub fn cloud_account(
        &self,
        account: Option<&ExternalId>,
        instance: Option<&ExternalId>,
    ) -> Result<Option<CloudAccount>, &'static str> {
        match (self.kind, account, instance) {
            (MethodKind::Enterprise, None, None) => Ok(None),
            (MethodKind::Enterprise, Some(_), _) => Err(
                "enterprise settles through the bound Expense Center account and takes no cloud account",
            ),
            (MethodKind::Enterprise, None, Some(_)) => Err(
                "enterprise settles through the bound Expense Center account and takes no marketplace instance id",
            ),
            (MethodKind::Cloud, None, None) => Err("a cloud method needs the cloud account id"),
            (MethodKind::Cloud, None, Some(_)) => Err(
                "a cloud method needs the cloud account id; a marketplace instance id belongs to one",
            ),
            (MethodKind::Cloud, Some(_), None) if self.requires_instance => {
                Err("this method needs the marketplace instance id")
            }
            (MethodKind::Cloud, Some(_), Some(_)) if !self.requires_instance => {
                Err("this method takes no marketplace instance id")
            }
            (MethodKind::Cloud, Some(account_id), instance_id) => Ok(Some(CloudAccount {
                account_id: account_id.clone(),
                instance_id: instance_id.cloned(),
            })),
        }
    }

    /// What an ended subscription of this method does (the default is [`SubscriptionEnd::Lock`]).
    pub fn subscription_end(&self) -> SubscriptionEnd {
        self.on_subscription_end.unwrap_or(SubscriptionEnd::Lock)
    }
}

/// What happens to a workspace whose cloud subscription ended (SPEC §10), per provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionEnd {
    /// The workspace moves to enterprise settlement with its bound Expense Center account
    /// (Alibaba Cloud's documented behaviour); no countdown starts.
    FallBack,
    /// A countdown starts, as for arrears (AWS's documented behaviour).
    Lock,
}

impl SubscriptionEnd {
    /// The kebab-case name (`fall-back`, `lock`).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionEnd::FallBack => "fall-back",
            SubscriptionEnd::Lock => "lock",
        }
    }
}

/// How long a countdown runs and when its reminder goes out (SPEC §10), as policy data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandingPolicy {
    /// Days from the first reason to the lock (14 in the product documentation); whole days of
    /// 24 hours.
    pub countdown_days: u32,
    /// Days before the deadline the reminder e-mail goes out (3); at most `countdown_days`.
    pub reminder_lead_days: u32,
}

impl Default for StandingPolicy {
    fn default() -> Self {
        Self {
            countdown_days: 14,
            reminder_lead_days: 3,
        }
    }
}

impl StandingPolicy {
    /// The deadline of a countdown that starts at `start`.
    pub fn deadline(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start
            .checked_add_signed(chrono::Duration::days(i64::from(self.countdown_days)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When the reminder of a countdown with this deadline is due.
    pub fn remind_at(&self, deadline: DateTime<Utc>) -> DateTime<Utc> {
        deadline
            .checked_sub_signed(chrono::Duration::days(i64::from(self.reminder_lead_days)))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// One site: where a workspace runs, which methods it may settle through, and its time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The site id (`cn1`, …).
    pub id: SiteId,
    /// A human-readable name.
    pub name: String,
    /// Who operates the site.
    pub operator: String,
    /// The settlement methods the site allows; always includes `enterprise`.
    pub allowed_methods: Vec<MethodId>,
    /// The cloud method offered by default when a workspace chooses cloud settlement.
    pub default_cloud_method: Option<MethodId>,
    /// The IANA time zone in which the site counts calendar months.
    pub time_zone: Tz,
}

impl Site {
    /// Whether the site allows the method.
    pub fn allows(&self, method: &MethodId) -> bool {
        self.allowed_methods.contains(method)
    }

    /// The allowed methods, comma-separated, for messages.
    pub fn allowed_list(&self) -> String {
        join(self.allowed_methods.iter().map(MethodId::as_str))
    }

    /// The first instant of the calendar month (in the site's time zone) after the one holding
    /// `instant`.
    pub fn start_of_next_month(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        start_of_next_month(self.time_zone, instant)
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// The first instant of the month after the one holding `instant`, counted in `tz`.
///
/// Midnight may not exist on the first of a month in zones that shift their clocks at midnight;
/// then the first instant that does exist that day is returned.
pub fn start_of_next_month(tz: Tz, instant: DateTime<Utc>) -> DateTime<Utc> {
    let local = instant.with_timezone(&tz);
    let (year, month) = if local.month() == 12 {
        (local.year() + 1, 1)
    } else {
        (local.year(), local.month() + 1)
    };
    // The first of a month always exists in the proleptic Gregorian calendar for the years a
    // DateTime<Utc> can hold, except one past the very last representable month.
    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
        return DateTime::<Utc>::MAX_UTC;
    };
    // Walk forward a minute at a time over a gap (at most a few hours).
    for minutes in 0..(24 * 60) {
        let naive = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t + chrono::Duration::minutes(minutes));
        let Some(naive) = naive else { break };
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    DateTime::<Utc>::MAX_UTC
}

/// The table of sites and settlement methods the aggregate decides by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SitePolicy {
    standing: StandingPolicy,
    methods: BTreeMap<MethodId, MethodSpec>,
    sites: BTreeMap<SiteId, Site>,
    site_order: Vec<SiteId>,
}

#[derive(Deserialize, Serialize)]
struct PolicyFile {
    #[serde(default)]
    standing: StandingPolicy,
    methods: Vec<MethodSpec>,
    sites: Vec<Site>,
}

/// The built-in table of SPEC §2, as JSON (also an example of the format hosts load).
pub const BUILTIN_POLICY_JSON: &str = include_str!("sites.json");

impl SitePolicy {
    /// The seven sites of the product documentation (`cn1`, `cn2`, `cn4`, `us1`, `cn6`, `eu1`,
    /// `ap1`) with their methods and time zones.
    pub fn builtin() -> Self {
        #[allow(clippy::expect_used)]
        // The built-in JSON is a constant checked by the `builtin_policy_loads` test.
        Self::from_json(BUILTIN_POLICY_JSON).expect("built-in site policy is valid")
    }

    /// Loads a host's own policy from JSON (the format of [`BUILTIN_POLICY_JSON`]).
    ///
    /// # Errors
    /// [`DomainError::InvalidSitePolicy`] when the JSON does not parse, a site or method appears
    /// twice, a site names an unknown method, a site does not allow `enterprise`, there is not
    /// exactly one enterprise method (with id `enterprise`), or a default cloud method is not a
    /// cloud method the site allows.
    pub fn from_json(json: &str) -> Result<Self, DomainError> {
        let file: PolicyFile =
            serde_json::from_str(json).map_err(|e| DomainError::InvalidSitePolicy {
                reason: format!("not a site policy document: {e}"),
            })?;
        Self::new(file.methods, file.sites)?.with_standing(file.standing)
    }

    /// The same policy with another countdown length and reminder lead.
    ///
    /// # Errors
    /// [`DomainError::InvalidSitePolicy`] for a countdown of zero days or a reminder lead longer
    /// than the countdown.
    pub fn with_standing(mut self, standing: StandingPolicy) -> Result<Self, DomainError> {
        if standing.countdown_days == 0 {
            return Err(DomainError::InvalidSitePolicy {
                reason: "standing.countdown_days must be at least 1".into(),
            });
        }
        if standing.reminder_lead_days > standing.countdown_days {
            return Err(DomainError::InvalidSitePolicy {
                reason: format!(
                    "standing.reminder_lead_days ({}) is longer than the countdown ({} days)",
                    standing.reminder_lead_days, standing.countdown_days
                ),
            });
        }
        self.standing = standing;
        Ok(self)
    }

    /// The countdown length and reminder lead.
    pub fn standing(&self) -> &StandingPolicy {
        &self.standing
    }

    /// The policy as JSON, in the format [`SitePolicy::from_json`] reads.
    pub fn to_json(&self) -> String {
        let file = PolicyFile {
            standing: self.standing,
            methods: self.methods.values().cloned().collect(),
            sites: self.sites().cloned().collect(),
        };
        // Serializing plain structs of strings to a String cannot fail.
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// Builds a policy from methods and sites, checking it as [`SitePolicy::from_json`] does.
    ///
    /// # Errors
    /// As [`SitePolicy::from_json`].
    pub fn new(methods: Vec<MethodSpec>, sites: Vec<Site>) -> Result<Self, DomainError> {
        let bad = |reason: String| DomainError::InvalidSitePolicy { reason };
        let mut method_map = BTreeMap::new();
        for method in methods {
            if method.kind == MethodKind::Enterprise && !method.id.is_enterprise() {
                return Err(bad(format!(
                    "method {} has kind enterprise; only the method with id enterprise may",
                    method.id
                )));
            }
            if method.id.is_enterprise() && method.kind != MethodKind::Enterprise {
                return Err(bad("method enterprise must have kind enterprise".into()));
            }
            if let Some(old) = method_map.insert(method.id.clone(), method) {
                return Err(bad(format!("method {} is listed twice", old.id)));
            }
        }
        if !method_map.contains_key(&MethodId::enterprise()) {
            return Err(bad("the method enterprise is missing".into()));
        }
        let mut site_map = BTreeMap::new();
        let mut site_order = Vec::new();
        for site in sites {
            for method in &site.allowed_methods {
                if !method_map.contains_key(method) {
                    return Err(bad(format!(
                        "site {} allows unknown method {method}",
                        site.id
                    )));
                }
            }
            if !site.allows(&MethodId::enterprise()) {
                return Err(bad(format!(
                    "site {} must allow enterprise: the upgrade settles through the Expense Center by default",
                    site.id
                )));
            }
            if let Some(default) = &site.default_cloud_method {
                let is_cloud = method_map
                    .get(default)
                    .is_some_and(|m| m.kind == MethodKind::Cloud);
                if !is_cloud || !site.allows(default) {
                    return Err(bad(format!(
                        "site {} offers {default} by default, which is not a cloud method it allows",
                        site.id
                    )));
                }
            }
            site_order.push(site.id.clone());
            if let Some(old) = site_map.insert(site.id.clone(), site) {
                return Err(bad(format!("site {} is listed twice", old.id)));
            }
        }
        if site_map.is_empty() {
            return Err(bad("the policy lists no sites".into()));
        }
        Ok(Self {
            standing: StandingPolicy::default(),
            methods: method_map,
            sites: site_map,
            site_order,
        })
    }

    /// The site with this id.
    ///
    /// # Errors
    /// [`DomainError::UnknownSite`] listing the known sites.
    pub fn site(&self, id: &SiteId) -> Result<&Site, DomainError> {
        self.sites.get(id).ok_or_else(|| DomainError::UnknownSite {
            site: id.clone(),
            known: join(self.site_order.iter().map(SiteId::as_str)),
        })
    }

    /// The method with this id, if the policy knows it.
    pub fn method(&self, id: &MethodId) -> Option<&MethodSpec> {
        self.methods.get(id)
    }

    /// Every site, in the order the policy lists them.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.site_order.iter().filter_map(|id| self.sites.get(id))
    }

    /// Every method, ordered by id.
    pub fn methods(&self) -> impl Iterator<Item = &MethodSpec> {
        self.methods.values()
    }
}

impl Default for SitePolicy {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn builtin_policy_loads() {
        let policy = SitePolicy::builtin();
        let ids: Vec<_> = policy.sites().map(|s| s.id.as_str().to_owned()).collect();
        assert_eq!(ids, ["cn1", "cn2", "cn4", "us1", "cn6", "eu1", "ap1"]);
        let cn4 = policy.site(&SiteId::parse("cn4").unwrap()).unwrap();
        assert_eq!(cn4.allowed_methods, vec![MethodId::enterprise()]);
        let us1 = policy.site(&SiteId::parse("us1").unwrap()).unwrap();
        assert_eq!(us1.time_zone, chrono_tz::America::Los_Angeles);
        assert_eq!(SitePolicy::from_json(&policy.to_json()).unwrap(), policy);
    }

    #[test]
    fn unknown_site_lists_known_ones() {
        let err = SitePolicy::builtin()
            .site(&SiteId::parse("mars1").unwrap())
            .unwrap_err();
        assert_eq!(err.code(), "unknown-site");
        assert!(err.to_string().contains("cn1, cn2, cn4"), "{err}");
    }

    #[test]
    fn hosts_can_add_sites_and_methods() {
        let json = r#"{"methods":[{"id":"enterprise","name":"EC","kind":"enterprise"},
            {"id":"huawei-cloud","name":"Huawei","kind":"cloud","requires_instance":false}],
            "sites":[{"id":"cn9","name":"China 9","operator":"Huawei Cloud",
            "allowed_methods":["enterprise","huawei-cloud"],"default_cloud_method":"huawei-cloud",
            "time_zone":"Asia/Shanghai"}]}"#;
        let policy = SitePolicy::from_json(json).unwrap();
        let site = policy.site(&SiteId::parse("cn9").unwrap()).unwrap();
        assert!(site.allows(&MethodId::parse("huawei-cloud").unwrap()));
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let cases = [
            (r#"{"methods":[],"sites":[]}"#, "enterprise is missing"),
            (
                r#"{"methods":[{"id":"enterprise","name":"EC","kind":"enterprise"}],
                "sites":[{"id":"x1","name":"X","operator":"o","allowed_methods":["enterprise","aws"],
                "default_cloud_method":null,"time_zone":"UTC"}]}"#,
                "unknown method aws",
            ),
            (
                r#"{"methods":[{"id":"enterprise","name":"EC","kind":"enterprise"},{"id":"aws","name":"A","kind":"cloud"}],
                "sites":[{"id":"x1","name":"X","operator":"o","allowed_methods":["aws"],
                "default_cloud_method":null,"time_zone":"UTC"}]}"#,
                "must allow enterprise",
            ),
            (
                r#"{"methods":[{"id":"enterprise","name":"EC","kind":"enterprise"}],
                "sites":[{"id":"x1","name":"X","operator":"o","allowed_methods":["enterprise"],
                "default_cloud_method":null,"time_zone":"Mars/Olympus"}]}"#,
                "not a site policy",
            ),
        ];
        for (json, expected) in cases {
            let err = SitePolicy::from_json(json).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn next_month_counts_in_the_site_time_zone() {
        // 2026-01-31 20:00 UTC is already February 1st 04:00 in Shanghai.
        let t = utc("2026-01-31T20:00:00Z");
        assert_eq!(
            start_of_next_month(chrono_tz::Asia::Shanghai, t),
            utc("2026-02-28T16:00:00Z")
        );
        assert_eq!(
            start_of_next_month(chrono_tz::UTC, t),
            utc("2026-02-01T00:00:00Z")
        );
        // December rolls over into the next year; Los Angeles is UTC-8 in winter.
        assert_eq!(
            start_of_next_month(chrono_tz::America::Los_Angeles, utc("2026-12-15T00:00:00Z")),
            utc("2027-01-01T08:00:00Z")
        );
    }

    #[test]
    fn next_month_skips_a_midnight_gap() {
        // America/Santiago moved its clocks forward at midnight on 2019-09-08 — not a month start;
        // America/Havana has had midnight DST gaps; use a synthetic check instead: the result is
        // always after the input and in the next local month.
        for tz in [
            chrono_tz::America::Havana,
            chrono_tz::America::Santiago,
            chrono_tz::Asia::Tehran,
        ] {
            let mut t = utc("2015-01-01T00:00:00Z");
            while t < utc("2025-01-01T00:00:00Z") {
                let next = start_of_next_month(tz, t);
                assert!(next > t);
                let (a, b) = (t.with_timezone(&tz), next.with_timezone(&tz));
                assert_eq!(
                    (b.year() * 12 + b.month() as i32) - (a.year() * 12 + a.month() as i32),
                    1
                );
                t += chrono::Duration::days(9);
            }
        }
    }
}
