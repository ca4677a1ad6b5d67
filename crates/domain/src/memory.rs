//! In-memory implementations of the ports and a manual clock, for tests, examples and hosts that
//! want to try the library without outside systems. Nothing here does IO.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::error::DomainError;
use crate::ports::{Clock, CloudMarketplace, ExpenseCenter, ExpenseCenterAccount, Registration};
use crate::values::{CloudAccount, Email, ExternalId, MethodId, UserName};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps are always left consistent (single inserts/removes), so a panic in another
    // thread while holding the lock cannot leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Directory {
    accounts: BTreeMap<UserName, (ExternalId, Option<ExternalId>)>,
    next_id: u64,
}

/// An Expense Center held in memory: user names are unique, registration is idempotent per
/// request id.
#[derive(Debug, Default)]
pub struct InMemoryExpenseCenter {
    directory: Mutex<Directory>,
}

impl InMemoryExpenseCenter {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an account directly (as if created elsewhere) and returns its id. Returns `None`
    /// when the user name is taken.
    pub fn add(&self, user_name: &UserName) -> Option<ExternalId> {
        let mut dir = lock(&self.directory);
        if dir.accounts.contains_key(user_name) {
            return None;
        }
        let id = next_id(&mut dir);
        dir.accounts.insert(user_name.clone(), (id.clone(), None));
        Some(id)
    }

    /// Whether the directory holds this user name.
    pub fn contains(&self, user_name: &UserName) -> bool {
        lock(&self.directory).accounts.contains_key(user_name)
    }
}

fn next_id(dir: &mut Directory) -> ExternalId {
    dir.next_id += 1;
    // "ec-" followed by digits always satisfies ExternalId's rules.
    ExternalId::parse(&format!("ec-{:06}", dir.next_id)).unwrap_or_else(|_| unreachable!())
}

#[async_trait]
impl ExpenseCenter for InMemoryExpenseCenter {
    async fn find_account(
        &self,
        user_name: &UserName,
    ) -> Result<Option<ExpenseCenterAccount>, DomainError> {
        Ok(lock(&self.directory)
            .accounts
            .get(user_name)
            .map(|(id, _)| ExpenseCenterAccount {
                user_name: user_name.clone(),
                account_id: id.clone(),
            }))
    }

    async fn register_account(
        &self,
        user_name: &UserName,
        _email: &Email,
        request_id: &ExternalId,
    ) -> Result<Registration, DomainError> {
        let mut dir = lock(&self.directory);
        if let Some((id, by_request)) = dir.accounts.get(user_name) {
            return Ok(if by_request.as_ref() == Some(request_id) {
                Registration::Registered(ExpenseCenterAccount {
                    user_name: user_name.clone(),
                    account_id: id.clone(),
                })
            } else {
                Registration::Taken
            });
        }
        let id = next_id(&mut dir);
        dir.accounts
            .insert(user_name.clone(), (id.clone(), Some(request_id.clone())));
        Ok(Registration::Registered(ExpenseCenterAccount {
            user_name: user_name.clone(),
            account_id: id,
        }))
    }
}

/// Cloud marketplace subscriptions held in memory.
#[derive(Debug, Default)]
pub struct InMemoryMarketplace {
    active: Mutex<BTreeSet<(MethodId, CloudAccount)>>,
}

impl InMemoryMarketplace {
    /// No subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a subscription.
    pub fn subscribe(&self, method: &MethodId, account: &CloudAccount) {
        lock(&self.active).insert((method.clone(), account.clone()));
    }

    /// Ends a subscription.
    pub fn unsubscribe(&self, method: &MethodId, account: &CloudAccount) {
        lock(&self.active).remove(&(method.clone(), account.clone()));
    }

    /// Whether the subscription is active (synchronous, for tests).
    pub fn is_active(&self, method: &MethodId, account: &CloudAccount) -> bool {
        lock(&self.active).contains(&(method.clone(), account.clone()))
    }
}

#[async_trait]
impl CloudMarketplace for InMemoryMarketplace {
    async fn is_subscribed(
        &self,
        method: &MethodId,
        account: &CloudAccount,
    ) -> Result<bool, DomainError> {
        Ok(self.is_active(method, account))
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *lock(&self.now) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}
