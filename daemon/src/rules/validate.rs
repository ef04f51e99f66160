//! Checks that a rule definition can work, before it runs.

use super::config::RuleConfig;
use super::engine::RuleError;

pub(crate) fn validate(c: &RuleConfig) -> Result<(), RuleError> {
    let err = |m: &str| Err(RuleError { rule: c.id.clone(), message: m.into() });
    if c.id.is_empty() || c.id.contains(['|', '/']) {
        return err("id must be non-empty and hold no `|` or `/`");
    }
    if c.flap.is_some_and(|f| f.transitions < 2 || f.window_s == 0) {
        return err("flap needs transitions >= 2 and window_s > 0");
    }
    c.condition.check().map_err(|message| RuleError { rule: c.id.clone(), message })
}
