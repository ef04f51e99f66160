//! `[[group]]`: orders that share a cause become one incident ([`crate::orders::incidents`]).

use crate::rules::Colour;
use serde::Deserialize;

/// What orders of one incident have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The site's `[[site]] street` (the site itself where it has none).
    Street,
    /// The site.
    Site,
    /// The device a subject hangs off (a wristband's gateway; a box is its own).
    Gateway,
    /// The rule.
    Rule,
}

/// `[[group]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The incident's key: e.g. `["street"]`, `["site", "rule"]`.
    pub by: Vec<GroupBy>,
    /// An incident takes new orders while the last one joined less than this ago, seconds.
    #[serde(default = "window_s")]
    pub window_s: u64,
    /// After an incident's first page, one digest per receiver at most this often, seconds.
    #[serde(default = "digest_s")]
    pub digest_s: u64,
    /// Only these rules' orders (empty: every rule's).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only orders of these colours (empty: all; a red joins but is always paged at once).
    #[serde(default)]
    pub colours: Vec<Colour>,
    /// Offline (no-data) orders in one incident that make it a mass offline (大面积离线).
    #[serde(default = "mass_offline")]
    pub mass_offline: u32,
}

fn window_s() -> u64 {
    300
}

fn digest_s() -> u64 {
    60
}

fn mass_offline() -> u32 {
    5
}

impl GroupConfig {
    /// What is wrong with it, given the rule ids.
    pub fn check(&self, rules: &[&str]) -> Result<(), String> {
        if self.by.is_empty() {
            return Err("`by` needs at least one of \"street\", \"site\", \"gateway\", \"rule\"".into());
        }
        if self.window_s == 0 || self.digest_s == 0 || self.mass_offline == 0 {
            return Err("window_s, digest_s and mass_offline must be >= 1".into());
        }
        match self.rules.iter().find(|r| !rules.contains(&r.as_str())) {
            Some(r) => Err(format!("rule `{r}` is not a [[rule]] id")),
            None => Ok(()),
        }
    }
}
