//! Silences over HTTP: operators and admins add and end them, everyone who may read sees them;
//! only an admin may silence red. The CLI's `gridsentry silence` does the same on the gateway.

use super::auth::need;
use super::{error, store_error, with_store, ApiState};
use crate::access::{Perm, Principal, Role};
use crate::clock::now_ms;
use crate::orders::silences::Matcher;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// The longest silence: a maintenance window, not a way to switch a site off.
pub const MAX_DAYS: i64 = 31;

/// `GET /api/v1/silences`: the latest 200, in force or not, newest first.
pub async fn list(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::Read) {
        return r;
    }
    let now = now_ms() as i64;
    match with_store(&s, |st| st.silences_recent(200)).await {
        Ok(list) => {
            let list: Vec<_> = list
                .into_iter()
                .map(|x| {
                    let active = (x.starts_ms..x.ends_ms).contains(&now);
                    json!({ "active": active, "silence": x })
                })
                .collect();
            Json(json!({ "silences": list })).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// Body of `POST /api/v1/silences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `site=…`, `street=…`, `rule=…` or `device=…`.
    #[serde(rename = "match")]
    matcher: String,
    /// End: RFC 3339 with an offset.
    until: String,
    /// Why (shown with every notification it holds).
    reason: String,
    #[serde(default)]
    include_red: bool,
}

/// Checks a new silence; its matcher and end.
pub fn check(matcher: &str, until: &str, reason: &str, now_ms: i64) -> Result<(Matcher, i64), String> {
    let m = Matcher::parse(matcher)?;
    let until: jiff::Timestamp = until
        .parse()
        .map_err(|e| format!("`until` is a time with its offset (2026-12-07T06:00:00+08:00): {e}"))?;
    let ends = until.as_millisecond();
    if ends <= now_ms {
        return Err("`until` is in the past".into());
    }
    if ends - now_ms > MAX_DAYS * 86_400_000 {
        return Err(format!("a silence lasts at most {MAX_DAYS} days"));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err("`reason` says why, in 1 to 500 printable characters".into());
    }
    Ok((m, ends))
}

/// With `[[site]]`s configured, a site or street to silence must be one of them: a typo would
/// otherwise silence nothing, and say nothing.
pub fn known(m: &Matcher, sites: &[crate::config::SiteConfig]) -> Result<(), String> {
    let found = match m.field.as_str() {
        _ if sites.is_empty() => true,
        "site" => sites.iter().any(|x| x.id == m.value),
        "street" => sites.iter().any(|x| x.street == m.value),
        _ => true,
    };
    match found {
        true => Ok(()),
        false => Err(format!("no [[site]] has {} `{}`", m.field, crate::logsafe::escape(&m.value, 64))),
    }
}

/// Whether `p` may silence `m`: anyone unlimited; someone limited to streets only a site or
/// a street of theirs (a rule or a device reaches past their streets).
pub fn within_streets(p: &Principal, m: &Matcher, sites: &[crate::config::SiteConfig]) -> Result<(), String> {
    if p.streets.is_empty() {
        return Ok(());
    }
    let street = match m.field.as_str() {
        "street" => Some(m.value.as_str()),
        "site" => sites.iter().find(|x| x.id == m.value).map(|x| x.street.as_str()).filter(|s| !s.is_empty()),
        _ => {
            return Err(
                "someone limited to streets silences a site or a street of theirs, not a rule or a device"
                    .into(),
            )
        }
    };
    match p.sees_street(street) {
        true => Ok(()),
        false => {
            Err(format!("{} `{}` is not on your streets", m.field, crate::logsafe::escape(&m.value, 64)))
        }
    }
}

/// `POST /api/v1/silences`.
pub async fn add(
    State(s): Shared,
    Extension(p): Extension<Principal>,
    Json(b): Json<NewSilence>,
) -> Response {
    if let Err(r) = need(&p, Perm::Silence) {
        return r;
    }
    if b.include_red && p.role != Role::Admin {
        return error(StatusCode::FORBIDDEN, "only an admin may silence red orders");
    }
    let now = now_ms() as i64;
    let (matcher, ends) = match check(&b.matcher, &b.until, &b.reason, now) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = known(&matcher, &s.sites) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if let Err(e) = within_streets(&p, &matcher, &s.sites) {
        return error(StatusCode::FORBIDDEN, e);
    }
    let reason = b.reason.trim().to_string();
    let red = b.include_red;
    match with_store(&s, move |st| st.silence_add(&matcher, ends, &reason, red, &p.name, now)).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/silences/{id}/expire`: ends it now.
pub async fn expire(State(s): Shared, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> Response {
    if let Err(r) = need(&p, Perm::Silence) {
        return r;
    }
    if !p.streets.is_empty() {
        // Someone limited to streets ends only silences they could have made.
        let recent = match with_store(&s, |st| st.silences_recent(1000)).await {
            Ok(r) => r,
            Err(e) => return store_error(e),
        };
        if let Some(x) = recent.iter().find(|x| x.id == id) {
            if let Err(e) = within_streets(&p, &x.matcher, &s.sites) {
                return error(StatusCode::FORBIDDEN, e);
            }
        }
    }
    match with_store(&s, move |st| st.silence_expire(id, &p.name, now_ms() as i64)).await {
        Ok(true) => Json(json!({ "id": id, "expired": true })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no silence {id} in force")),
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SiteConfig;

    #[test]
    fn someone_limited_to_streets_silences_only_their_own() {
        let site = |id: &str, street: &str| SiteConfig {
            id: id.into(),
            name: String::new(),
            lat: 0.0,
            lon: 0.0,
            street: street.into(),
        };
        let sites = [site("plaza-3", "解放碑街道"), site("plaza-4", "朝天门街道")];
        let li =
            Principal { name: "li".into(), role: Role::Operator, streets: vec!["解放碑街道".into()] };
        let m = |s: &str| Matcher::parse(s).unwrap();
        assert!(within_streets(&li, &m("site=plaza-3"), &sites).is_ok());
        assert!(within_streets(&li, &m("street=解放碑街道"), &sites).is_ok());
        assert!(within_streets(&li, &m("site=plaza-4"), &sites).is_err());
        assert!(within_streets(&li, &m("street=朝天门街道"), &sites).is_err());
        assert!(within_streets(&li, &m("rule=plaza-noise"), &sites).is_err(), "a rule reaches every street");
        assert!(within_streets(&li, &m("device=nb-01"), &sites).is_err());
        let wang = Principal { streets: vec![], ..li };
        assert!(within_streets(&wang, &m("rule=plaza-noise"), &sites).is_ok());
    }
}
