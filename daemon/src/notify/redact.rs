//! What a receiver is not sent: fields of the evidence (the reading that caused a transition).
//!
//! Why: heart-rate readings of elderly people are sensitive personal information (PIPL, art.
//! 28: health data). The raw RR intervals describe a person's heart beat by beat; a duty room
//! needs the rate. The outbox keeps the whole payload (a replay or a fallback of another
//! receiver starts from it); each delivery leaves out what its receiver's `redact` names. Chat
//! robots never get the evidence at all (their messages carry the summary, which holds the
//! rate), and `[privacy] evidence_days` bounds how long the store keeps it.

use serde_json::Value;

/// Left out unless a receiver says otherwise: RR intervals (beat-to-beat heart data).
pub const DEFAULT: &[&str] = &["hr.rr_1024"];

/// `payload` without the evidence fields named in `redact` (`stream.field`); unchanged when
/// there is nothing to remove.
pub fn evidence<'a>(payload: &'a str, redact: &[String]) -> std::borrow::Cow<'a, str> {
    if redact.is_empty() || !payload.contains("\"evidence\":{") {
        return payload.into();
    }
    let Ok(mut p) = serde_json::from_str::<Value>(payload) else { return payload.into() };
    let mut removed = false;
    if let Some(ev) = p.get_mut("evidence").and_then(Value::as_object_mut) {
        for path in redact {
            let Some((body, field)) = path.split_once('.') else { continue };
            if let Some(obj) = ev.get_mut(body).and_then(Value::as_object_mut) {
                removed |= obj.remove(field).is_some();
            }
        }
    }
    match removed {
        true => p.to_string().into(),
        false => payload.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_intervals_are_left_out_and_the_rate_stays() {
        let p = r#"{"order_id":1,"evidence":{"v":1,"hr":{"band":"a1","bpm":48,"contact":"detected","rr_1024":[1200,1250]}}}"#;
        let out: Value = serde_json::from_str(&evidence(p, &["hr.rr_1024".into()])).unwrap();
        assert_eq!(out["evidence"]["hr"]["bpm"], 48);
        assert!(out["evidence"]["hr"].get("rr_1024").is_none());
        assert_eq!(evidence(p, &[]), p, "redact = [] sends everything");
        let noise = r#"{"evidence":{"noise":{"laeq_db":75}}}"#;
        assert_eq!(evidence(noise, &["hr.rr_1024".into()]), noise, "nothing to remove: bytes unchanged");
        assert_eq!(evidence(r#"{"evidence":null}"#, &["hr.rr_1024".into()]), r#"{"evidence":null}"#);
    }
}
