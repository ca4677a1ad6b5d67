//! Who is asking: the [`Authenticate`] port a host implements with its own identity provider,
//! the [`Identity`] it yields, and [`JwtAuth`], the bearer-token implementation `billing serve`
//! uses (SPEC §12).
//!
//! A role never comes from a request body: it comes from the identity, and only from there.

use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use billing_domain::{Actor, ActorId, Role, WorkspaceId};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The cookie the console keeps its sign-in in (the bearer token itself; `HttpOnly`,
/// `SameSite=Strict`).
pub const SESSION_COOKIE: &str = "billing_session";

/// The scope of a billing-system token (`"scope": "billing-system"`).
pub const SYSTEM_SCOPE: &str = "billing-system";

/// What a signed-in caller may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// A role in each of these workspaces (owner, admin or member) and none elsewhere.
    Workspaces(BTreeMap<WorkspaceId, Role>),
    /// The billing system itself: the `system` role in every workspace, and the event feed.
    System,
}

/// A signed-in caller: an actor id and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The actor id commands are recorded under.
    pub actor: ActorId,
    /// Its roles.
    pub access: Access,
}

impl Identity {
    /// The caller's role in `workspace`, if it has one.
    pub fn role_in(&self, workspace: &WorkspaceId) -> Option<Role> {
        match &self.access {
            Access::System => Some(Role::System),
            Access::Workspaces(roles) => roles.get(workspace).copied(),
        }
    }

    /// The actor a command on `workspace` is sent as, if the caller has a role there.
    pub fn actor_in(&self, workspace: &WorkspaceId) -> Option<Actor> {
        self.role_in(workspace)
            .map(|role| Actor::new(self.actor.clone(), role))
    }

    /// Whether this is the billing system.
    pub fn is_system(&self) -> bool {
        matches!(self.access, Access::System)
    }

    /// The workspaces the caller has a role in, with the role (empty for the billing system,
    /// which has one everywhere).
    pub fn workspaces(&self) -> Vec<(WorkspaceId, Role)> {
        match &self.access {
            Access::System => Vec::new(),
            Access::Workspaces(roles) => roles.iter().map(|(w, r)| (w.clone(), *r)).collect(),
        }
    }
}

/// Why a request is not signed in. Every variant is answered `401` with its [`code`]; nothing
/// is read or written for such a request.
///
/// [`code`]: AuthError::code
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials: send `Authorization: Bearer <token>` (or sign in to the console).
    #[error("no credentials: send Authorization: Bearer <token>")]
    Missing,
    /// The credentials are not a token this server can read (not a JWT, a scheme other than
    /// Bearer, claims of the wrong shape). Issue a new one.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token's signature does not verify, or its algorithm is not the one the server uses
    /// (`alg: none` included). Issue a new one with the server's key.
    #[error("token rejected: {0}")]
    Invalid(String),
    /// The token expired at the instant given. Issue a new one.
    #[error("token expired")]
    Expired,
}

impl AuthError {
    /// The problem code (`missing-token`, `malformed-token`, `invalid-token`, `token-expired`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing-token",
            AuthError::Malformed(_) => "malformed-token",
            AuthError::Invalid(_) => "invalid-token",
            AuthError::Expired => "token-expired",
        }
    }
}

/// A host's identity provider: turns a request's headers (its session cookie, its bearer
/// token) into an [`Identity`]. Implement it over your own sign-in; [`JwtAuth`] is the one
/// `billing serve` uses.
#[async_trait]
pub trait Authenticate: Send + Sync + 'static {
    /// Who sent the request.
    ///
    /// # Errors
    /// [`AuthError`] when the request is not signed in (answered `401`).
    async fn authenticate(&self, request: &Parts) -> Result<Identity, AuthError>;
}

/// The claims of a `billing` token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The actor id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Workspace id → role (`owner`, `admin`, `member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<BTreeMap<String, String>>,
    /// `billing-system` for the billing system's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// What a token grants, for [`JwtAuth::issue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A role in each workspace (not `system`).
    Workspaces(BTreeMap<WorkspaceId, Role>),
    /// The billing system.
    System,
}

/// Why a token could not be issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// `system` is not a workspace role: issue a system token instead.
    #[error(
        "role system is not a workspace role: issue a billing-system token (--system) instead"
    )]
    SystemRole,
    /// A token must grant something.
    #[error("a token needs at least one workspace and role, or the billing-system scope")]
    Empty,
    /// The key could not sign (an empty key).
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// HS256 bearer tokens signed with a shared key (SPEC §12). Accepts the token from the
/// `Authorization: Bearer` header, or from the console's [`SESSION_COOKIE`].
#[derive(Clone)]
pub struct JwtAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

/// Shortest key accepted, in bytes (HS256's own block of 256 bits).
pub const MIN_KEY_BYTES: usize = 32;

impl JwtAuth {
    /// Tokens signed and checked with `key` (HS256; at least [`MIN_KEY_BYTES`] bytes).
    ///
    /// # Errors
    /// [`IssueError::Sign`] for a key shorter than [`MIN_KEY_BYTES`].
    pub fn hs256(key: &[u8]) -> Result<Self, IssueError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(IssueError::Sign(format!(
                "the key has {} bytes; HS256 needs at least {MIN_KEY_BYTES}",
                key.len()
            )));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        })
    }

    /// A token for `actor` granting `grant`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// [`IssueError`].
    pub fn issue(
        &self,
        actor: &ActorId,
        grant: &Grant,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String, IssueError> {
        let (workspaces, scope) = match grant {
            Grant::System => (None, Some(SYSTEM_SCOPE.to_owned())),
            Grant::Workspaces(roles) if roles.is_empty() => return Err(IssueError::Empty),
            Grant::Workspaces(roles) => {
                if roles.values().any(|r| *r == Role::System) {
                    return Err(IssueError::SystemRole);
                }
                let map = roles
                    .iter()
                    .map(|(w, r)| (w.as_str().to_owned(), r.as_str().to_owned()))
                    .collect();
                (Some(map), None)
            }
        };
        let claims = Claims {
            sub: actor.as_str().to_owned(),
            exp: (now + ttl).timestamp(),
            iat: Some(now.timestamp()),
            workspaces,
            scope,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| IssueError::Sign(e.to_string()))
    }

    /// The identity a token carries.
    ///
    /// # Errors
    /// [`AuthError`]: malformed, forged (another key or algorithm, `alg: none`), expired, or
    /// claims that name no valid actor, workspace or role.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        // jsonwebtoken cannot even parse a header naming an algorithm it does not know
        // (`none`): that is a forged token, not a malformed one.
        if let Some(alg) = header_alg(token) {
            if alg != "HS256" {
                return Err(AuthError::Invalid(format!(
                    "algorithm {alg:?}: this server accepts HS256 only"
                )));
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::ImmatureSignature => AuthError::Invalid(e.to_string()),
                _ => AuthError::Malformed(e.to_string()),
            })?;
        identity_of(data.claims)
    }
}

/// The `alg` a token's header names, if the header is base64url JSON with a string `alg`.
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// The identity verified claims name.
fn identity_of(claims: Claims) -> Result<Identity, AuthError> {
    let actor =
        ActorId::parse(&claims.sub).map_err(|e| AuthError::Malformed(format!("sub: {e}")))?;
    let access = match (claims.scope.as_deref(), claims.workspaces) {
        (Some(SYSTEM_SCOPE), None) => Access::System,
        (None, Some(map)) => {
            let mut roles = BTreeMap::new();
            for (workspace, role) in map {
                let id = WorkspaceId::parse(&workspace)
                    .map_err(|e| AuthError::Malformed(format!("workspaces: {e}")))?;
                let role = role
                    .parse::<Role>()
                    .ok()
                    .filter(|r| *r != Role::System)
                    .ok_or_else(|| {
                        AuthError::Malformed(format!(
                            "workspaces.{workspace}: role {role:?} is not owner, admin or member"
                        ))
                    })?;
                roles.insert(id, role);
            }
            Access::Workspaces(roles)
        }
        (Some(other), _) => {
            return Err(AuthError::Malformed(format!(
                "scope {other:?}: the only scope is {SYSTEM_SCOPE:?}, without workspaces"
            )))
        }
        (None, None) => {
            return Err(AuthError::Malformed(
                "the token grants nothing: no workspaces and no scope".into(),
            ))
        }
    };
    Ok(Identity { actor, access })
}

/// The bearer token of a request: the `Authorization: Bearer` header, else the session cookie.
///
/// # Errors
/// [`AuthError::Missing`] without either; [`AuthError::Malformed`] for another scheme.
pub fn bearer_token(headers: &HeaderMap) -> Result<String, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("the Authorization header is not text".into()))?;
        let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Malformed(
                "the Authorization header is not \"Bearer <token>\"".into(),
            ));
        }
        return Ok(token.trim().to_owned());
    }
    crate::cookies::get(headers, SESSION_COOKIE).ok_or(AuthError::Missing)
}

#[async_trait]
impl Authenticate for JwtAuth {
    async fn authenticate(&self, request: &Parts) -> Result<Identity, AuthError> {
        self.verify(&bearer_token(&request.headers)?)
    }
}
