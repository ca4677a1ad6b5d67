//! Reading and writing the console's cookies (the `cookie` crate, through `axum-extra`).

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, SameSite};

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, for `path`; `secure` adds `Secure`;
/// `None` for `max_age_seconds` is a session cookie, `Some(0)` removes it.
pub(crate) fn set(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age_seconds: Option<i64>,
) -> String {
    let cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(path.to_owned())
        .build()
        .to_string();
    match max_age_seconds {
        Some(seconds) => format!("{cookie}; Max-Age={}", seconds.max(0)),
        None => cookie,
    }
}
