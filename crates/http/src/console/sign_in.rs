//! Signing in (a token, verified by the host's [`Authenticate`](crate::Authenticate), kept in
//! the session cookie) and out.

use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::pages::{Layout, SignInPage};
use super::session::{
    checked_form, csrf_subject, csrf_token, form_fields, new_command_id, refuse_cross_site,
};
use super::words::{self, Said};
use super::{html, see_other, Reply};
use crate::auth::{AuthError, SESSION_COOKIE};
use crate::{cookies, Billing};

/// `?token=` of `GET /sign-in`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    /// The token to sign in with.
    token: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    /// The token to sign in with.
    token: Option<String>,
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id (every form has one; signing in sends no command).
    command_id: Option<String>,
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {
    /// The CSRF token.
    csrf: Option<String>,
    /// The command id (signing out sends no command).
    command_id: Option<String>,
}

form_fields!(SignInForm, SignOutForm);

/// The sign-in page, with `error` and its status.
fn sign_in_page(billing: &Billing, parts: &Parts, error: Option<Said>) -> Response {
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let subject = csrf_subject(&parts.headers, None);
    html(
        status,
        &SignInPage {
            layout: Layout::new(billing, "Sign in", None),
            error,
            action: billing.path("/sign-in"),
            csrf: csrf_token(&billing.inner.csrf_key, &subject),
            command_id: new_command_id(),
        },
    )
}

/// Whether a token can be kept in a cookie as it is (visible ASCII without the characters a
/// cookie value cannot hold).
fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// Verifies `token` with the host's [`Authenticate`](crate::Authenticate) as a bearer token;
/// valid: sets the session cookie and `303` to the console's home; else `401` and why.
async fn sign_in_with(billing: &Billing, parts: &Parts, token: &str) -> Response {
    let token = token.trim();
    let refused = |e: AuthError| {
        sign_in_page(
            billing,
            parts,
            Some(Said::new(
                StatusCode::UNAUTHORIZED,
                e.code(),
                words::auth(&e),
            )),
        )
    };
    if !cookie_safe(token) {
        return refused(AuthError::Malformed(
            "it contains characters a token cannot have".into(),
        ));
    }
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return refused(AuthError::Malformed("it is not text".into()));
    };
    let mut request = axum::http::Request::new(());
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    let (bearer_parts, ()) = request.into_parts();
    if let Err(e) = billing.inner.auth.authenticate(&bearer_parts).await {
        return refused(e);
    }
    let options = &billing.inner.options;
    let path = match options.mount_path.as_str() {
        "" => "/",
        mount => mount,
    };
    let cookie = cookies::set(SESSION_COOKIE, token, path, options.secure_cookies, None);
    let mut response = see_other(&billing.home());
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        Err(_) => refused(AuthError::Malformed("it cannot be kept in a cookie".into())),
    }
}

/// `GET /sign-in`: with `?token=`, signs in; without, the sign-in form.
pub(crate) async fn page(
    State(billing): State<Billing>,
    parts: Parts,
    Query(query): Query<TokenQuery>,
) -> Response {
    match query.token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => sign_in_with(&billing, &parts, token).await,
        _ => sign_in_page(&billing, &parts, None),
    }
}

/// `POST /sign-in`: the sign-in form.
pub(crate) async fn submit(State(billing): State<Billing>, request: Request) -> Reply {
    let (parts, body) = request.into_parts();
    refuse_cross_site(&billing, &parts)?;
    let subject = csrf_subject(&parts.headers, None);
    let (form, _) =
        checked_form::<SignInForm>(&billing, parts.clone(), body, &subject, None).await?;
    let token = form.token.unwrap_or_default();
    if token.trim().is_empty() {
        let e = AuthError::Missing;
        return Ok(sign_in_page(
            &billing,
            &parts,
            Some(Said::new(
                StatusCode::UNAUTHORIZED,
                e.code(),
                words::auth(&e),
            )),
        ));
    }
    Ok(sign_in_with(&billing, &parts, &token).await)
}

/// `POST /sign-out`: clears the session cookie, `303` to the sign-in page. The form's token
/// is checked against the session cookie the request carries, valid or not, so a session that
/// expired can still be cleared.
pub(crate) async fn sign_out(State(billing): State<Billing>, request: Request) -> Reply {
    let (parts, body) = request.into_parts();
    refuse_cross_site(&billing, &parts)?;
    let identity = billing.inner.auth.authenticate(&parts).await.ok();
    let subject = csrf_subject(&parts.headers, identity.as_ref());
    checked_form::<SignOutForm>(&billing, parts, body, &subject, None).await?;
    let options = &billing.inner.options;
    let path = match options.mount_path.as_str() {
        "" => "/",
        mount => mount,
    };
    let cookie = cookies::set(SESSION_COOKIE, "", path, options.secure_cookies, Some(0));
    let mut response = see_other(&billing.path("/sign-in"));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
