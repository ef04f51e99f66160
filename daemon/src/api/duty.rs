//! `GET /api/v1/duty`: the rota (`[[duty]]`) with who is on duty now, and the field workers an
//! operator may dispatch to — what the console's 派遣 picker offers, on-duty people of the
//! order's street first.

use super::auth::need;
use super::{store_error, with_store, ApiState};
use crate::access::{Perm, Principal, Role};
use crate::clock::now_ms;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<ApiState>>;

/// Minutes after local midnight in `timezone` at `ms`.
fn local_minute(timezone: &str, ms: i64) -> u32 {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    crate::rules::minute_of_day(ms.max(0) as u64, &tz).unwrap_or(0)
}

/// The rota and the dispatchable people (operators and machines: whoever may dispatch).
pub async fn duty(State(s): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = need(&p, Perm::ActAny) {
        return r;
    }
    let now = now_ms() as i64;
    let minute = local_minute(&s.timezone, now);
    let rota: Vec<_> = s
        .duty
        .iter()
        .filter(|d| p.sees_street(Some(&d.street)))
        .map(|d| json!({ "street": d.street, "people": d.people, "hours": d.hours, "on_now": d.covers(minute) }))
        .collect();
    let people = match with_store(&s, move |store| store.people(now)).await {
        Ok(people) => people,
        Err(e) => return store_error(e),
    };
    let field: Vec<_> = people
        .into_iter()
        .filter(|x| x.role == Role::Field && !x.disabled)
        .filter(|x| {
            p.streets.is_empty() || x.streets.is_empty() || x.streets.iter().any(|st| p.sees_street(Some(st)))
        })
        .map(|x| json!({ "name": x.name, "streets": x.streets }))
        .collect();
    Json(json!({ "rota": rota, "field": field, "timezone": s.timezone })).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_local_minute_is_the_zones() {
        // 2025-11-25T12:00:00Z is 20:00 in Shanghai.
        assert_eq!(super::local_minute("Asia/Shanghai", 1_764_072_000_000), 20 * 60);
        assert_eq!(super::local_minute("UTC", 1_764_072_000_000), 12 * 60);
    }
}
