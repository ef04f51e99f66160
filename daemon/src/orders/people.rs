//! People and their credentials (console sessions, personal API tokens), in the orders
//! database beside the audit chain: every change to a person, every login and every lockout
//! is recorded in the same transaction as the change itself.
//!
//! Passwords are checked outside any transaction (Argon2 takes tens of milliseconds, and an
//! SQLite write transaction would hold the pipeline's commits that long): first
//! [`Store::login_lookup`] reads the hash, the caller verifies, then [`Store::login_outcome`]
//! counts the failure or issues the credential.

use super::audit::{append, Entry};
use super::db::{args, Row, Tx};
use super::store::{Store, StoreError};
use crate::access::{self, Principal, Role};
use serde::Serialize;

/// A people operation that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    /// No such person.
    #[error("no person `{0}`")]
    NotFound(String),
    /// The name is taken.
    #[error("`{0}` exists already")]
    Exists(String),
}

/// A person as listed (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Streets (empty: all).
    pub streets: Vec<String>,
    /// Cannot log in.
    pub disabled: bool,
    /// Locked until then, UTC ms (0: not locked).
    pub locked_until_ms: i64,
    /// Sessions and tokens still valid.
    pub credentials: i64,
}

/// What [`Store::login_lookup`] found.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The Argon2 hash to verify against.
    pub hash: String,
    /// Disabled people never log in.
    pub disabled: bool,
    /// Locked until then, UTC ms.
    pub locked_until_ms: i64,
}

/// A credential to issue on a successful login.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    /// `session` or `token`.
    pub kind: &'a str,
    /// The secret's hash ([`access::secret_hash`]).
    pub hash: &'a str,
    /// A label (the token's purpose, the session's address).
    pub label: &'a str,
    /// Valid until, UTC ms.
    pub expires_ms: i64,
}

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In: the credential was issued.
    Issued(Principal),
    /// Wrong name or password, disabled or locked (the caller says the same in each case).
    Refused,
}

/// A change to a person.
#[derive(Debug, Clone)]
pub enum Change {
    /// Cannot log in; every credential revoked.
    Disable,
    /// Can log in again.
    Enable,
    /// A new password (hash); unlocked; every credential revoked.
    Reset(String),
    /// Unlocked and failures forgotten.
    Unlock,
    /// Every session and token revoked.
    Revoke,
}

impl Change {
    fn action(&self) -> &'static str {
        match self {
            Change::Disable => "person.disable",
            Change::Enable => "person.enable",
            Change::Reset(_) => "person.reset",
            Change::Unlock => "person.unlock",
            Change::Revoke => "person.revoke",
        }
    }
}

fn streets_of(s: &str) -> Vec<String> {
    s.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn role_of(r: &Row, i: usize) -> Result<Role, StoreError> {
    let s = r.text(i)?;
    Role::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("column {i}: unknown role `{s}`")))
}

fn revoke_all(tx: &mut dyn Tx, name: &str) -> Result<u64, StoreError> {
    tx.exec("UPDATE credentials SET revoked = 1 WHERE person = ?1 AND revoked = 0", args![name])
}

impl Store {
    /// Adds a person (the password already hashed); recorded as done `by`.
    pub fn person_add(
        &mut self,
        name: &str,
        role: Role,
        streets: &[String],
        hash: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let streets = streets.join(",");
        self.write(|tx, _| {
            if tx.row("SELECT 1 FROM people WHERE name = ?1", args![name])?.is_some() {
                return Err(PeopleError::Exists(name.into()).into());
            }
            tx.exec(
                "INSERT INTO people (name, role, streets, hash, disabled, failures, locked_until_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, 0, 0, 0, ?5)",
                args![name, role.as_str(), &streets, hash, now_ms],
            )?;
            let detail = format!("role {}{}", role.as_str(), if streets.is_empty() { String::new() } else { format!(", streets {streets}") });
            let subject = format!("person {name}");
            append(tx, now_ms, &Entry { who: by, action: "person.add", subject: &subject, detail: &detail })?;
            Ok(())
        })
    }

    /// Every person, by name.
    pub fn people(&mut self, now_ms: i64) -> Result<Vec<Person>, StoreError> {
        self.read(|tx| {
            tx.rows(
                "SELECT name, role, streets, disabled, locked_until_ms,
                   (SELECT COUNT(*) FROM credentials c WHERE c.person = p.name AND c.revoked = 0 AND c.expires_ms > ?1)
                 FROM people p ORDER BY name",
                args![now_ms],
            )?
            .iter()
            .map(|r| {
                Ok(Person {
                    name: r.text(0)?,
                    role: role_of(r, 1)?,
                    streets: streets_of(&r.text(2)?),
                    disabled: r.flag(3)?,
                    locked_until_ms: r.int(4)?,
                    credentials: r.int(5)?,
                })
            })
            .collect()
        })
    }

    /// Changes a person; recorded as done `by`.
    pub fn person_change(
        &mut self,
        name: &str,
        change: &Change,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx, _| {
            if tx.row("SELECT 1 FROM people WHERE name = ?1", args![name])?.is_none() {
                return Err(PeopleError::NotFound(name.into()).into());
            }
            let revoked = match change {
                Change::Disable => {
                    tx.exec("UPDATE people SET disabled = 1 WHERE name = ?1", args![name])?;
                    revoke_all(tx, name)?
                }
                Change::Enable => {
                    tx.exec("UPDATE people SET disabled = 0 WHERE name = ?1", args![name]).map(|_| 0)?
                }
                Change::Reset(hash) => {
                    tx.exec(
                        "UPDATE people SET hash = ?2, failures = 0, locked_until_ms = 0 WHERE name = ?1",
                        args![name, hash.as_str()],
                    )?;
                    revoke_all(tx, name)?
                }
                Change::Unlock => tx
                    .exec("UPDATE people SET failures = 0, locked_until_ms = 0 WHERE name = ?1", args![name])
                    .map(|_| 0)?,
                Change::Revoke => revoke_all(tx, name)?,
            };
            let subject = format!("person {name}");
            let detail = if revoked > 0 { format!("{revoked} credentials revoked") } else { String::new() };
            append(
                tx,
                now_ms,
                &Entry { who: by, action: change.action(), subject: &subject, detail: &detail },
            )?;
            Ok(())
        })
    }

    /// What a login for `name` checks against (`None`: nobody of that name).
    pub fn login_lookup(&mut self, name: &str) -> Result<Option<Candidate>, StoreError> {
        self.read(|tx| {
            tx.row("SELECT hash, disabled, locked_until_ms FROM people WHERE name = ?1", args![name])?
                .map(|r| Ok(Candidate { hash: r.text(0)?, disabled: r.flag(1)?, locked_until_ms: r.int(2)? }))
                .transpose()
        })
    }

    /// Records a login attempt for `name` whose password `matched` (or not), from `from`; on
    /// success, issues `issue`. Five failures in a row lock the name for 15 minutes.
    pub fn login_outcome(
        &mut self,
        name: &str,
        matched: bool,
        issue: Issue<'_>,
        from: &str,
        now_ms: i64,
    ) -> Result<Outcome, StoreError> {
        self.write(|tx, _| {
            let row = tx.row(
                "SELECT role, streets, disabled, locked_until_ms, failures FROM people WHERE name = ?1",
                args![name],
            )?;
            let Some(r) = row else {
                let subject = format!("name {}", crate::logsafe::escape(name, 64));
                let detail = format!("from {from}: no such person");
                append(
                    tx,
                    now_ms,
                    &Entry { who: "-", action: "login.failed", subject: &subject, detail: &detail },
                )?;
                return Ok(Outcome::Refused);
            };
            let (role, streets) = (role_of(&r, 0)?, streets_of(&r.text(1)?));
            let (disabled, locked_until, failures) = (r.flag(2)?, r.int(3)?, r.int(4)?);
            let subject = format!("person {name}");
            let refuse = |tx: &mut dyn Tx, why: &str| {
                let detail = format!("from {from}: {why}");
                append(
                    tx,
                    now_ms,
                    &Entry { who: name, action: "login.failed", subject: &subject, detail: &detail },
                )
                .map(|_| Outcome::Refused)
            };
            if disabled {
                return refuse(tx, "disabled");
            }
            if locked_until > now_ms {
                return refuse(tx, "locked");
            }
            if !matched {
                let failures = failures + 1;
                if failures >= access::LOCK_AFTER {
                    let until = now_ms + access::LOCK_MS;
                    tx.exec(
                        "UPDATE people SET failures = 0, locked_until_ms = ?2 WHERE name = ?1",
                        args![name, until],
                    )?;
                    refuse(tx, "wrong password")?;
                    let detail =
                        format!("after {failures} failed logins, for {} minutes", access::LOCK_MS / 60_000);
                    append(
                        tx,
                        now_ms,
                        &Entry { who: name, action: "lockout", subject: &subject, detail: &detail },
                    )?;
                    return Ok(Outcome::Refused);
                }
                tx.exec("UPDATE people SET failures = ?2 WHERE name = ?1", args![name, failures])?;
                return refuse(tx, "wrong password");
            }
            tx.exec("UPDATE people SET failures = 0 WHERE name = ?1", args![name])?;
            tx.exec(
                "INSERT INTO credentials (hash, person, kind, label, created_ms, expires_ms, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                args![issue.hash, name, issue.kind, issue.label, now_ms, issue.expires_ms],
            )?;
            let action = if issue.kind == "token" { "token.issue" } else { "login" };
            let detail = format!(
                "from {from}{}",
                if issue.label.is_empty() { String::new() } else { format!(": {}", issue.label) }
            );
            append(tx, now_ms, &Entry { who: name, action, subject: &subject, detail: &detail })?;
            Ok(Outcome::Issued(Principal { name: name.into(), role, streets }))
        })
    }

    /// The person a session or token (by its hash) belongs to, while valid. A console session
    /// in use is extended to [`access::SESSION_MS`] from now (written at most every ten
    /// minutes): a console left open in the command centre keeps sounding its alarms; one
    /// unused for 12 hours has to log in again.
    pub fn principal(
        &mut self,
        secret_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(Principal, String)>, StoreError> {
        let found = self.read(|tx| {
            tx.row(
                "SELECT p.name, p.role, p.streets, c.kind, c.expires_ms FROM credentials c JOIN people p ON p.name = c.person
                 WHERE c.hash = ?1 AND c.revoked = 0 AND c.expires_ms > ?2 AND p.disabled = 0",
                args![secret_hash, now_ms],
            )?
            .map(|r| {
                let p = Principal { name: r.text(0)?, role: role_of(&r, 1)?, streets: streets_of(&r.text(2)?) };
                Ok((p, r.text(3)?, r.int(4)?))
            })
            .transpose()
        })?;
        let Some((p, kind, expires)) = found else { return Ok(None) };
        if kind == "session" && expires - now_ms < access::SESSION_MS - 600_000 {
            let until = now_ms + access::SESSION_MS;
            self.write(|tx, _| {
                tx.exec(
                    "UPDATE credentials SET expires_ms = ?2 WHERE hash = ?1 AND revoked = 0",
                    args![secret_hash, until],
                )
            })?;
        }
        Ok(Some((p, kind)))
    }

    /// Ends one session or token (log out); recorded.
    pub fn revoke_one(&mut self, secret_hash: &str, who: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let kind =
                tx.row("SELECT kind FROM credentials WHERE hash = ?1 AND revoked = 0", args![secret_hash])?;
            let Some(kind) = kind else { return Ok(false) };
            tx.exec("UPDATE credentials SET revoked = 1 WHERE hash = ?1", args![secret_hash])?;
            let action = if kind.text(0)? == "token" { "token.revoke" } else { "logout" };
            let subject = format!("person {who}");
            append(tx, now_ms, &Entry { who, action, subject: &subject, detail: "" })?;
            Ok(true)
        })
    }
}
