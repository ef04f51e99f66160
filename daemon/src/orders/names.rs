//! What people call things: rules by their display `name`, sites by their name and street, times
//! in the daemon's zone. The store uses it to title every change it writes (webhooks, the demo's
//! lines) and every order it lists (console, CLI), so no reader has to look names up again.

use super::incidents::Grouping;
use super::warnings::Hazard;
use crate::rules::{default_name, RuleConfig};
use jiff::tz::TimeZone;
use std::collections::HashMap;

/// Names of rules and sites, and the zone local times are given in.
#[derive(Debug, Clone)]
pub struct Names {
    tz: TimeZone,
    rules: HashMap<String, String>,
    sites: HashMap<String, (String, String)>,
    /// Which orders share an incident, and which rules say offline ([`super::incidents`]).
    grouping: Grouping,
    /// The hazard sites whose residents may be warned ([`super::warnings`]).
    hazards: Vec<Hazard>,
}

impl Default for Names {
    /// Ids for names, UTC.
    fn default() -> Self {
        Names {
            tz: TimeZone::UTC,
            rules: HashMap::new(),
            sites: HashMap::new(),
            grouping: Grouping::default(),
            hazards: Vec::new(),
        }
    }
}

impl Names {
    /// From the rules (their `name`, or their kind's), the sites (`id`, `name`, `street`) and
    /// the zone.
    pub fn new<'a>(
        tz: TimeZone,
        rules: impl IntoIterator<Item = &'a RuleConfig>,
        sites: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Names {
        let rules = rules
            .into_iter()
            .map(|r| {
                let name = if r.name.trim().is_empty() { default_name(&r.condition) } else { r.name.trim() };
                (r.id.clone(), name.to_string())
            })
            .collect();
        let sites = sites
            .into_iter()
            .map(|(id, name, street)| (id.to_string(), (name.trim().to_string(), street.trim().to_string())))
            .collect();
        Names { tz, rules, sites, grouping: Grouping::default(), hazards: Vec::new() }
    }

    /// With these incident groups.
    pub fn grouped(mut self, grouping: Grouping) -> Names {
        self.grouping = grouping;
        self
    }

    /// With these hazard sites.
    pub fn with_hazards(mut self, hazards: Vec<Hazard>) -> Names {
        self.hazards = hazards;
        self
    }

    /// The hazard site `site`'s warning, if it has one.
    pub fn hazard(&self, site: &str) -> Option<&Hazard> {
        self.hazards.iter().find(|h| h.site == site)
    }

    /// The incident groups.
    pub fn grouping(&self) -> &Grouping {
        &self.grouping
    }

    /// The site's name (its id where it has none).
    pub fn site<'a>(&'a self, site: &'a str) -> &'a str {
        self.sites.get(site).map(|(name, _)| name.as_str()).filter(|n| !n.is_empty()).unwrap_or(site)
    }

    /// The rule's name (its id where it is unknown).
    pub fn rule<'a>(&'a self, rule: &'a str) -> &'a str {
        self.rules.get(rule).map_or(rule, String::as_str)
    }

    /// `广场夜间噪声超标 · 解放碑广场（解放碑街道）`: the rule's name, the site's name and its street
    /// (ids where no name is known).
    pub fn title(&self, rule: &str, site: &str) -> String {
        let rule = self.rules.get(rule).map_or(rule, String::as_str);
        match self.sites.get(site) {
            Some((name, street)) => {
                let name = if name.is_empty() { site } else { name };
                match street.is_empty() {
                    true => format!("{rule} · {name}"),
                    false => format!("{rule} · {name}（{street}）"),
                }
            }
            None => format!("{rule} · {site}"),
        }
    }

    /// The street of `site` (`[[site]] street`), if it has one.
    pub fn street(&self, site: &str) -> Option<&str> {
        self.sites.get(site).map(|(_, street)| street.as_str()).filter(|s| !s.is_empty())
    }

    /// UTC ms as RFC 3339 with the zone's offset (`2026-12-06T14:26:19+08:00`; `Z` where the
    /// offset is zero).
    pub fn local(&self, ms: i64) -> String {
        let Ok(t) = jiff::Timestamp::from_millisecond(ms) else { return ms.to_string() };
        match self.tz.to_offset(t).seconds() {
            0 => t.to_string(),
            _ => t.to_zoned_datetime(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
        }
    }

    /// The zone.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_use_names_and_fall_back_to_ids() {
        let n = Names::new(TimeZone::UTC, [], [("jfb", "解放碑广场", "解放碑街道"), ("x", "", "")]);
        assert_eq!(n.title("noise", "jfb"), "noise · 解放碑广场（解放碑街道）");
        assert_eq!(n.title("noise", "x"), "noise · x");
        assert_eq!(n.title("noise", "nowhere"), "noise · nowhere");
    }

    #[test]
    fn local_times_carry_the_offset() {
        let n = Names { tz: TimeZone::get("Asia/Shanghai").unwrap(), ..Names::default() };
        assert_eq!(n.local(1_764_072_000_000), "2025-11-25T20:00:00+08:00");
        assert_eq!(n.local(1_764_072_000_123), "2025-11-25T20:00:00.123+08:00");
        assert_eq!(Names::default().local(1_764_072_000_000), "2025-11-25T12:00:00Z");
    }
}
