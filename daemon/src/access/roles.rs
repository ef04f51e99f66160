//! Roles and what each may do. Separated as a city's security review asks (MLPS 2.0: system,
//! security and audit administration apart): operators work orders, admins manage people and
//! never change orders or the audit log, auditors read the audit log and change nothing.

use serde::Serialize;

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads orders, devices and sites.
    Viewer,
    /// A grid worker: reads, and works the orders dispatched to them (ack, on site, resolve).
    Field,
    /// Works every order (dispatch, ack, on site, resolve, close) and replays dead letters.
    Operator,
    /// Manages people (add, disable, reset, revoke) and reads orders; never works orders.
    Admin,
    /// Reads the audit log (and orders); changes nothing.
    Auditor,
    /// The `[daemon] legacy_token` (healthchecks, scripts): an operator's rights under the
    /// name `legacy-token`. Never stored as a person's role.
    Machine,
}

/// Something a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Read orders, devices, sites, the live feed.
    Read,
    /// Ack, on-site or resolve an order dispatched to oneself.
    ActOwn,
    /// Any action on any order.
    ActAny,
    /// Read and replay undeliverable notifications.
    DeadLetters,
    /// Add, disable, reset people; revoke their credentials.
    People,
    /// Read the audit log.
    Audit,
    /// Add and end silences (maintenance windows); red ones need an admin besides.
    Silence,
    /// Warn a hazard site's residents from a red order (一键预警).
    Warn,
    /// Pause, resume or cancel a firmware roll-out.
    Fleet,
}

impl Role {
    /// Roles a person can have.
    pub const PEOPLE: [Role; 5] = [Role::Viewer, Role::Field, Role::Operator, Role::Admin, Role::Auditor];

    /// Name in the CLI, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Field => "field",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Machine => "machine",
        }
    }

    /// Parses a person's role (never `machine`).
    pub fn parse(s: &str) -> Option<Role> {
        Role::PEOPLE.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do `p`.
    pub fn allows(self, p: Perm) -> bool {
        use Perm::*;
        match self {
            Role::Viewer => matches!(p, Read),
            Role::Field => matches!(p, Read | ActOwn),
            Role::Operator | Role::Machine => {
                matches!(p, Read | ActOwn | ActAny | DeadLetters | Silence | Warn)
                    || (self == Role::Machine && p == Fleet)
            }
            Role::Admin => matches!(p, Read | People | DeadLetters | Silence | Fleet),
            Role::Auditor => matches!(p, Read | Audit),
        }
    }
}

/// The person (or machine) behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Name, as recorded in order events and the audit log.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Streets this person is limited to (empty: every street).
    pub streets: Vec<String>,
}

impl Principal {
    /// The legacy token's principal.
    pub fn machine() -> Principal {
        Principal { name: "legacy-token".into(), role: Role::Machine, streets: Vec::new() }
    }

    /// Works only the orders dispatched to them (a grid worker): sees, hears and acts on those.
    pub fn own_only(&self) -> bool {
        self.role == Role::Field
    }

    /// Whether an order dispatched to `assignee` is in this person's view (a grid worker's own
    /// only; everyone else's regardless).
    pub fn sees_assignee(&self, assignee: Option<&str>) -> bool {
        !self.own_only() || assignee == Some(self.name.as_str())
    }

    /// Whether an order on `street` (the site's street; `None`: not on any configured street)
    /// is in this person's view.
    pub fn sees_street(&self, street: Option<&str>) -> bool {
        self.streets.is_empty() || street.is_some_and(|s| self.streets.iter().any(|m| m == s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duties_are_separated() {
        use Perm::*;
        assert!(
            Role::Operator.allows(ActAny) && !Role::Operator.allows(People) && !Role::Operator.allows(Audit)
        );
        assert!(Role::Admin.allows(People) && !Role::Admin.allows(ActOwn) && !Role::Admin.allows(Audit));
        assert!(
            Role::Auditor.allows(Audit) && !Role::Auditor.allows(ActOwn) && !Role::Auditor.allows(People)
        );
        assert!(
            Role::Field.allows(ActOwn) && !Role::Field.allows(ActAny) && !Role::Field.allows(DeadLetters)
        );
        assert!(Role::Viewer.allows(Read) && !Role::Viewer.allows(ActOwn));
        for r in Role::PEOPLE {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("machine"), None, "nobody is made a machine");
    }

    #[test]
    fn streets_limit_the_view() {
        let mut p = Principal { name: "li".into(), role: Role::Field, streets: vec![] };
        assert!(p.sees_street(None) && p.sees_street(Some("jiefangbei")));
        p.streets = vec!["jiefangbei".into()];
        assert!(p.sees_street(Some("jiefangbei")) && !p.sees_street(Some("nanping")) && !p.sees_street(None));
    }
}
