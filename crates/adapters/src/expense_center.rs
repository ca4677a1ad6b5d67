//! The embedded Expense Center: a directory of accounts in the store's own database
//! (`expense_center_accounts`). User names are unique; registration is idempotent per request id.
//! A host with a real Expense Center implements `billing_domain::ExpenseCenter` instead.

use std::sync::Arc;

use async_trait::async_trait;

use billing_domain::{
    Clock, DomainError, Email, ExpenseCenter, ExpenseCenterAccount, ExternalId, Registration,
    UserName,
};
use billing_store::{on_backend, Db};
use sha2_free_id::account_id_for;

use crate::error::AdapterError;
use billing_domain::instant::rfc3339;

/// The embedded Expense Center directory.
#[derive(Clone)]
pub struct EmbeddedExpenseCenter {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EmbeddedExpenseCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedExpenseCenter")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

mod sha2_free_id {
    use billing_domain::{ExternalId, UserName};

    /// A stable account id for a user name: `ec-` and 16 hex digits of an FNV-1a hash, so the
    /// same name always gets the same id.
    pub(super) fn account_id_for(user_name: &UserName) -> Option<ExternalId> {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in user_name.as_str().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        ExternalId::parse(&format!("ec-{hash:016x}")).ok()
    }
}

fn port_error(e: impl std::fmt::Display) -> DomainError {
    DomainError::PortUnavailable {
        port: "expense center",
        reason: e.to_string(),
    }
}

impl EmbeddedExpenseCenter {
    /// The directory in `db` (tables from the store's migrations); accounts are registered at
    /// `clock`'s instant.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Registers an account outside any command (`billing account register`).
    ///
    /// # Errors
    /// [`AdapterError::Store`]; returns `Ok(Registration::Taken)` when the name is taken.
    pub async fn register(
        &self,
        user_name: &UserName,
        email: &Email,
    ) -> Result<Registration, AdapterError> {
        self.insert(user_name, email, None).await
    }

    /// The e-mail address of an account.
    ///
    /// # Errors
    /// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored address that does
    /// not parse.
    pub async fn email_of(&self, user_name: &UserName) -> Result<Option<Email>, AdapterError> {
        let row: Option<(String,)> = on_backend!(self.db.backend(), |pool| sqlx::query_as(
            "SELECT email FROM expense_center_accounts WHERE user_name = $1"
        )
        .bind(user_name.as_str())
        .fetch_optional(pool)
        .await?);
        row.map(|(email,)| {
            Email::parse(&email).map_err(|e| AdapterError::Corrupt {
                location: "expense_center_accounts".into(),
                detail: format!("email of {user_name} holds {email:?}, which does not parse: {e}"),
            })
        })
        .transpose()
    }

    async fn insert(
        &self,
        user_name: &UserName,
        email: &Email,
        request_id: Option<&ExternalId>,
    ) -> Result<Registration, AdapterError> {
        let Some(account_id) = account_id_for(user_name) else {
            return Ok(Registration::Taken);
        };
        let now = rfc3339(self.clock.now());
        let inserted = on_backend!(self.db.backend(), |pool| {
            sqlx::query(
            "INSERT INTO expense_center_accounts (user_name, account_id, email, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
        )
        .bind(user_name.as_str())
        .bind(account_id.as_str())
        .bind(email.as_str())
        .bind(request_id.map(ExternalId::as_str))
        .bind(&now)
        .execute(pool)
        .await?
        .rows_affected()
        });
        if inserted == 1 {
            return Ok(Registration::Registered(ExpenseCenterAccount {
                user_name: user_name.clone(),
                account_id,
            }));
        }
        // Taken — unless it is this very request again (a retried command).
        let row: Option<(String, Option<String>)> =
            on_backend!(self.db.backend(), |pool| sqlx::query_as(
                "SELECT account_id, request_id FROM expense_center_accounts WHERE user_name = $1"
            )
            .bind(user_name.as_str())
            .fetch_optional(pool)
            .await?);
        match (row, request_id) {
            (Some((id, Some(by))), Some(request)) if by == request.as_str() => {
                let account_id = ExternalId::parse(&id).map_err(|e| AdapterError::Corrupt {
                    location: "expense_center_accounts".into(),
                    detail: format!(
                        "account_id of {user_name} holds {id:?}, which does not parse: {e}"
                    ),
                })?;
                Ok(Registration::Registered(ExpenseCenterAccount {
                    user_name: user_name.clone(),
                    account_id,
                }))
            }
            _ => Ok(Registration::Taken),
        }
    }
}

#[async_trait]
impl ExpenseCenter for EmbeddedExpenseCenter {
    async fn find_account(
        &self,
        user_name: &UserName,
    ) -> Result<Option<ExpenseCenterAccount>, DomainError> {
        let row: Option<(String,)> = on_backend!(self.db.backend(), |pool| sqlx::query_as(
            "SELECT account_id FROM expense_center_accounts WHERE user_name = $1"
        )
        .bind(user_name.as_str())
        .fetch_optional(pool)
        .await
        .map_err(port_error)?);
        match row {
            None => Ok(None),
            Some((id,)) => Ok(Some(ExpenseCenterAccount {
                user_name: user_name.clone(),
                account_id: ExternalId::parse(&id).map_err(port_error)?,
            })),
        }
    }

    async fn register_account(
        &self,
        user_name: &UserName,
        email: &Email,
        request_id: &ExternalId,
    ) -> Result<Registration, DomainError> {
        self.insert(user_name, email, Some(request_id))
            .await
            .map_err(port_error)
    }
}
