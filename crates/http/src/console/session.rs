//! Who is signed in to the console, and the checks every form passes before anything is read or
//! written: the request comes from this site (`Origin`), the form parses, and its CSRF token is
//! the HMAC of this session under the server's key.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use billing_domain::ExternalId;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::pages::error_page;
use super::words::Said;
use super::{see_other, Stop};
use crate::auth::{Identity, SESSION_COOKIE};
use crate::Billing;

type HmacSha256 = Hmac<Sha256>;

/// A signed-in console request: who, and the CSRF token its forms carry.
pub(crate) struct Session {
    /// The caller, as the host's [`Authenticate`](crate::Authenticate) says.
    pub(crate) identity: Identity,
    /// The CSRF token of this session.
    pub(crate) csrf: String,
}

/// What the CSRF token of a request is bound to: the session cookie if the request has one,
/// else the actor id (a host whose sign-in is not this cookie), else nothing (the sign-in page
/// before anyone is signed in).
pub(crate) fn csrf_subject(headers: &HeaderMap, identity: Option<&Identity>) -> String {
    crate::cookies::get(headers, SESSION_COOKIE)
        .or_else(|| identity.map(|i| i.actor.as_str().to_owned()))
        .unwrap_or_default()
}

/// The CSRF token for `subject`: HMAC-SHA256 under `key`, base64url without padding.
pub(crate) fn csrf_token(key: &[u8], subject: &str) -> String {
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(subject.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes a key of any length; this arm is never taken.
        Err(_) => String::new(),
    }
}

/// Whether `token` is the CSRF token for `subject` (compared in constant time).
pub(crate) fn csrf_valid(key: &[u8], subject: &str, token: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(token.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(subject.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// Whether the request's `Origin`, if it has one, names the host and port of its `Host`
/// header (the default port of the origin's scheme when a side gives none). An `Origin` that
/// does not parse (`null` included), or a request without any host to compare with, is not.
pub(crate) fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok()) else {
        return false;
    };
    let (Some(scheme), Some(from)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .or_else(|| uri.authority().cloned());
    let Some(host) = host else {
        return false;
    };
    from.host().eq_ignore_ascii_case(host.host())
        && from.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// A new command id: 16 random bytes in hex (a clock and a counter if the system has no random
/// source, which still makes one per page).
pub(crate) fn new_command_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        return format!("{nanos:024x}{count:08x}");
    }
    let mut id = String::with_capacity(32);
    for byte in bytes {
        let _ = write!(id, "{byte:02x}");
    }
    id
}

/// The signed-in caller of a console request, or a `303` to the sign-in page.
pub(crate) async fn signed_in(billing: &Billing, parts: &Parts) -> Result<Session, Stop> {
    match billing.inner.auth.authenticate(parts).await {
        Ok(identity) => {
            let subject = csrf_subject(&parts.headers, Some(&identity));
            Ok(Session {
                csrf: csrf_token(&billing.inner.csrf_key, &subject),
                identity,
            })
        }
        Err(_) => Err(see_other(&billing.path("/sign-in")).into()),
    }
}

/// The two fields every console form carries.
pub(crate) trait FormFields: DeserializeOwned {
    /// The `csrf` field.
    fn csrf(&self) -> Option<&str>;
    /// The `command_id` field.
    fn command_id(&self) -> Option<&str>;
}

/// Implements [`FormFields`] for form structs with `csrf` and `command_id` fields.
macro_rules! form_fields {
    ($($form:ty),* $(,)?) => {
        $(impl $crate::console::session::FormFields for $form {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
            fn command_id(&self) -> Option<&str> {
                self.command_id.as_deref()
            }
        })*
    };
}
pub(crate) use form_fields;

/// A form that passed every check, from a signed-in caller.
pub(crate) struct Posted<T> {
    /// The caller.
    pub(crate) session: Session,
    /// The form.
    pub(crate) form: T,
    /// Its command id (the form's, or a new one when it has none).
    pub(crate) command_id: ExternalId,
}

/// `403 cross-site-request` unless the request's `Origin` is this site.
pub(crate) fn refuse_cross_site(billing: &Billing, parts: &Parts) -> Result<(), Stop> {
    if same_origin(&parts.headers, &parts.uri) {
        return Ok(());
    }
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("another site");
    Err(error_page(
        billing,
        None,
        Said::new(
            StatusCode::FORBIDDEN,
            "cross-site-request",
            format!("This form was sent from another site ({origin}), not from this one. It was refused and nothing was changed."),
        ),
    )
    .into())
}

/// A console `POST`: this site's, signed in (else `303` to the sign-in page), a form that
/// parses, with this session's CSRF token. Nothing is read or written before these pass.
pub(crate) async fn posted<T: FormFields>(
    billing: &Billing,
    request: Request,
) -> Result<Posted<T>, Stop> {
    let (parts, body) = request.into_parts();
    refuse_cross_site(billing, &parts)?;
    let session = signed_in(billing, &parts).await?;
    let subject = csrf_subject(&parts.headers, Some(&session.identity));
    let (form, command_id) = checked_form(billing, parts, body, &subject, Some(&session)).await?;
    Ok(Posted {
        session,
        form,
        command_id,
    })
}

/// Parses the form of a request and checks its CSRF token against `subject`.
pub(crate) async fn checked_form<T: FormFields>(
    billing: &Billing,
    parts: Parts,
    body: Body,
    subject: &str,
    session: Option<&Session>,
) -> Result<(T, ExternalId), Stop> {
    let form = match Form::<T>::from_request(Request::from_parts(parts, body), &()).await {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let said = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Said::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    format!(
                        "The form is larger than the {} KiB this server accepts. Nothing was changed.",
                        crate::BODY_LIMIT / 1024
                    ),
                )
            } else {
                Said::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-form",
                    format!(
                        "The form could not be read ({}). Reload the page and send it again; nothing was changed.",
                        rejection.body_text()
                    ),
                )
            };
            return Err(error_page(billing, session, said).into());
        }
    };
    let token_ok = form
        .csrf()
        .is_some_and(|token| csrf_valid(&billing.inner.csrf_key, subject, token));
    if !token_ok {
        return Err(error_page(
            billing,
            session,
            Said::new(
                StatusCode::FORBIDDEN,
                "csrf-token-invalid",
                "This form's security token is missing or does not belong to your session (it may come from another site, or from before you signed in again). Reload the page and send it again; nothing was changed.",
            ),
        )
        .into());
    }
    let command_id = match form.command_id().filter(|id| !id.is_empty()) {
        None => ExternalId::parse(&new_command_id()),
        Some(id) => ExternalId::parse(id),
    };
    match command_id {
        Ok(command_id) => Ok((form, command_id)),
        Err(_) => Err(error_page(
            billing,
            session,
            Said::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-value",
                "The form's command id is not valid. Reload the page and send it again; nothing was changed.",
            ),
        )
        .into()),
    }
}
