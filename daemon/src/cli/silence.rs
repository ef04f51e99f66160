//! `gridsentry silence`: silences on the gateway itself, in the config's order database (the
//! API's `/api/v1/silences` does the same over HTTP). Recorded in the audit log as done by
//! `cli:<login user>`; the running daemon's notifier reads the silences in force before every
//! round of sending, so a silence holds from the moment it is added.

use super::fail;
use super::people::{cli_actor, done, with_store};
use clap::Subcommand;
use gridsentry::api::silences::{check, known};
use std::path::PathBuf;
use std::process::ExitCode;

/// `gridsentry silence …`.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Page nobody about what matches until a time (orders are still recorded).
    Add {
        /// `site=…`, `street=…`, `rule=…` or `device=…`.
        #[arg(long = "match")]
        matcher: String,
        /// End, RFC 3339 with its offset (`2026-12-07T06:00:00+08:00`); at most 31 days ahead.
        #[arg(long)]
        until: String,
        /// Why (shown with every notification it holds).
        #[arg(long)]
        reason: String,
        /// Red orders too (otherwise they are paged regardless).
        #[arg(long)]
        include_red: bool,
    },
    /// The latest silences, in force or not.
    List,
    /// End a silence now.
    Expire {
        /// Its id.
        id: i64,
    },
}

/// `gridsentry silence`.
pub fn silence(file: PathBuf, cmd: SilenceCommand) -> ExitCode {
    let by = cli_actor();
    let now = gridsentry::clock::now_ms() as i64;
    match cmd {
        SilenceCommand::Add { matcher, until, reason, include_red } => {
            let (m, ends) = match check(&matcher, &until, &reason, now) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            done(with_store(&file, move |s, cfg| {
                let sites: Vec<_> = cfg.sites.iter().map(|x| x.get_ref().clone()).collect();
                known(&m, &sites)?;
                let id = s
                    .silence_add(&m, ends, reason.trim(), include_red, &by, now)
                    .map_err(|e| e.to_string())?;
                println!(
                    "silence {id}: {}={} until {until}{}",
                    m.field,
                    m.value,
                    if include_red { ", red too" } else { "" }
                );
                Ok(())
            }))
        }
        SilenceCommand::List => done(with_store(&file, move |s, _| {
            println!("{:>5}  {:<6} {:<28} {:<25} {:<16} REASON", "ID", "STATE", "MATCH", "UNTIL (UTC)", "BY");
            for x in s.silences_recent(200).map_err(|e| e.to_string())? {
                let state = if (x.starts_ms..x.ends_ms).contains(&now) { "active" } else { "ended" };
                let until =
                    jiff::Timestamp::from_millisecond(x.ends_ms).map(|t| t.to_string()).unwrap_or_default();
                let what = format!(
                    "{}={}{}",
                    x.matcher.field,
                    x.matcher.value,
                    if x.include_red { " +red" } else { "" }
                );
                println!("{:>5}  {state:<6} {what:<28} {until:<25} {:<16} {}", x.id, x.who, x.reason);
            }
            Ok(())
        })),
        SilenceCommand::Expire { id } => done(with_store(&file, move |s, _| {
            match s.silence_expire(id, &by, now).map_err(|e| e.to_string())? {
                true => {
                    println!("silence {id} ended");
                    Ok(())
                }
                false => Err(format!("no silence {id} in force")),
            }
        })),
    }
}
