//! Which devices are heard: the registry of known devices, and a bound on how many are tracked.
//!
//! Why: every device the daemon hears costs memory and rows (its sequence window, rule state,
//! the console's view). A broken gateway or a hostile client inventing ids would grow them
//! without limit. With `[devices] allow = "known"` only registered devices (the file
//! `gridsentry provision` keeps, re-read when it changes) and configured field devices get in;
//! with `"any"`, every device does until `max_tracked` are tracked, then new ones are refused.
//! A refused reading is counted and acknowledged (the broker must not redeliver it for ever),
//! never applied or stored. Tracked devices are never evicted: forgetting a device's sequence
//! window would let its redelivered readings apply twice.

use crate::config::Allow;
use gridsentry_sensors::Id;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

/// Why a device is not heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not in the registry (`allow = "known"`).
    Unknown,
    /// `max_tracked` devices are tracked already.
    OverLimit,
}

impl Refusal {
    /// Both, for counters.
    pub const ALL: [Refusal; 2] = [Refusal::Unknown, Refusal::OverLimit];

    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown",
            Refusal::OverLimit => "over_limit",
        }
    }
}

/// The gate's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Who gets in.
    pub allow: Allow,
    /// The registry file.
    pub registry: Option<PathBuf>,
    /// Configured field devices (always known).
    pub field: Vec<(Id, Id)>,
    /// Most devices tracked.
    pub max_tracked: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { allow: Allow::Any, registry: None, field: Vec::new(), max_tracked: 10_000 }
    }
}

/// The gate.
#[derive(Debug)]
pub struct Gate {
    policy: Policy,
    known: HashSet<(Id, Id)>,
    /// The registry's modification time when last read (`None` inside: no such file); `None`:
    /// not read yet.
    registry_mtime: Option<Option<SystemTime>>,
    tracked: HashSet<(Id, Id)>,
}

impl Gate {
    /// A gate tracking `tracked` already (devices restored from the store).
    pub fn new(policy: Policy, tracked: impl IntoIterator<Item = (Id, Id)>) -> Gate {
        let mut g = Gate {
            policy,
            known: HashSet::new(),
            registry_mtime: None,
            tracked: tracked.into_iter().collect(),
        };
        g.refresh();
        g
    }

    /// Re-reads the registry if its file changed (called on the pipeline's tick). A registry
    /// that cannot be read keeps the last good list (logged).
    pub fn refresh(&mut self) {
        let Some(path) = &self.policy.registry else { return };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if self.registry_mtime == Some(mtime) {
            return;
        }
        match crate::provision::read_registry(path) {
            Ok(set) => {
                self.known = set
                    .iter()
                    .filter_map(|l| l.split_once('/'))
                    .filter_map(|(s, d)| Some((Id::new(s).ok()?, Id::new(d).ok()?)))
                    .collect();
                self.registry_mtime = Some(mtime);
                tracing::info!(devices = self.known.len(), path = %path.display(), "device registry loaded");
            }
            Err(e) => tracing::error!(error = %e, "device registry unreadable; keeping the last one"),
        }
    }

    /// Whether a reading of `site/device` gets in; admits (tracks) the device when it does.
    pub fn admit(&mut self, site: &Id, device: &Id) -> Result<(), Refusal> {
        let key = (site.clone(), device.clone());
        if self.policy.allow == Allow::Known
            && !self.known.contains(&key)
            && !self.policy.field.contains(&key)
        {
            return Err(Refusal::Unknown);
        }
        if self.tracked.contains(&key) {
            return Ok(());
        }
        if self.tracked.len() >= self.policy.max_tracked {
            return Err(Refusal::OverLimit);
        }
        self.tracked.insert(key);
        Ok(())
    }

    /// Devices tracked.
    pub fn tracked(&self) -> usize {
        self.tracked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn known_devices_only_and_a_bound_that_never_evicts() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("devices");
        std::fs::write(&reg, "# provisioned\nplaza-3/nb-01\n").unwrap();
        let policy = Policy {
            allow: Allow::Known,
            registry: Some(reg.clone()),
            field: vec![(id("slope-1"), id("gnss-1"))],
            max_tracked: 2,
        };
        let mut g = Gate::new(policy, []);
        assert_eq!(g.admit(&id("plaza-3"), &id("nb-01")), Ok(()));
        assert_eq!(g.admit(&id("slope-1"), &id("gnss-1")), Ok(()), "field devices are known");
        assert_eq!(g.admit(&id("plaza-3"), &id("nb-99")), Err(Refusal::Unknown));
        std::fs::write(&reg, "plaza-3/nb-01\nplaza-3/nb-02\n").unwrap();
        // A changed file is noticed by its modification time; force it for coarse clocks.
        g.registry_mtime = None;
        g.refresh();
        assert_eq!(g.admit(&id("plaza-3"), &id("nb-02")), Err(Refusal::OverLimit), "two tracked already");
        let mut any = Gate::new(Policy { max_tracked: 2, ..Policy::default() }, [(id("a"), id("b"))]);
        assert_eq!(any.admit(&id("a"), &id("c")), Ok(()));
        assert_eq!(any.admit(&id("a"), &id("d")), Err(Refusal::OverLimit));
        assert_eq!(any.admit(&id("a"), &id("b")), Ok(()), "tracked devices stay");
        assert_eq!(any.tracked(), 2);
    }
}
