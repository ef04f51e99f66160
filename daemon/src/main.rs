//! The `gridsentry` command: run the daemon, check a config, run the demo, work orders.

mod cli;
mod samples;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if matches!(args.command, cli::Command::Demo { .. }) {
        gridsentry::demo::prepare_env();
    }
    // The demo's product is its stdout; its stderr keeps warnings only (rumqttd logs every
    // closed connection as an error).
    let default = match args.command {
        cli::Command::Demo { .. } => "warn,rumqttd=off",
        _ => "info",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("GRIDSENTRY_LOG").unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gridsentry: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(cli::dispatch(args))
}
