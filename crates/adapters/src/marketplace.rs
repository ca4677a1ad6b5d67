//! The embedded cloud marketplaces: subscriptions in the store's own database
//! (`cloud_subscriptions`). A host with real marketplaces implements
//! `billing_domain::CloudMarketplace` instead.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::{Clock, CloudAccount, CloudMarketplace, DomainError, MethodId};
use billing_store::{on_backend, Db};

use crate::error::AdapterError;

/// The embedded marketplace subscriptions.
#[derive(Clone)]
pub struct EmbeddedMarketplace {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EmbeddedMarketplace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedMarketplace")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl EmbeddedMarketplace {
    /// The subscriptions in `db` (tables from the store's migrations); they change at `clock`'s
    /// instant.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Starts (`true`) or ends (`false`) a subscription.
    ///
    /// # Errors
    /// [`AdapterError::Store`].
    pub async fn set(
        &self,
        method: &MethodId,
        account: &CloudAccount,
        active: bool,
    ) -> Result<(), AdapterError> {
        let now = billing_domain::instant::rfc3339(self.clock.now());
        let instance = account.instance_id.as_ref().map_or("", |i| i.as_str());
        on_backend!(self.db.backend(), |pool| {
            sqlx::query(
            "INSERT INTO cloud_subscriptions (method, account_id, instance_id, active, changed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (method, account_id, instance_id) \
             DO UPDATE SET active = excluded.active, changed_at = excluded.changed_at"
        )
        .bind(method.as_str())
        .bind(account.account_id.as_str())
        .bind(instance)
        .bind(active)
        .bind(&now)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }
}

#[async_trait]
impl CloudMarketplace for EmbeddedMarketplace {
    async fn is_subscribed(
        &self,
        method: &MethodId,
        account: &CloudAccount,
    ) -> Result<bool, DomainError> {
        let instance = account.instance_id.as_ref().map_or("", |i| i.as_str());
        let row: Option<(bool,)> = on_backend!(self.db.backend(), |pool| {
            sqlx::query_as(
            "SELECT active FROM cloud_subscriptions WHERE method = $1 AND account_id = $2 AND instance_id = $3"
        )
        .bind(method.as_str())
        .bind(account.account_id.as_str())
        .bind(instance)
        .fetch_optional(pool)
        .await
        .map_err(|e| DomainError::PortUnavailable {
            port: "cloud marketplace",
            reason: e.to_string(),
        })?
        });
        Ok(row.is_some_and(|r| r.0))
    }
}
