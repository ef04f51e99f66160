//! The `gridsentry` command: run the daemon, check a config, run the demo, work orders.

mod cli;
mod samples;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    few_malloc_arenas();
    let args = cli::Args::parse();
    if matches!(args.command, cli::Command::Demo { .. }) {
        gridsentry::demo::prepare_env();
    }
    init_logs(&args);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gridsentry: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(cli::dispatch(args))
}

/// Logs on stderr: `--log-level`, else `RUST_LOG`, else the command's default; text (colour only
/// on a terminal) or JSON lines; each line names its module, so the embedded broker's
/// (`rumqttd`) are told apart. The embedded broker logs every closed connection as an error: it
/// is kept at warn (off in the demo, whose product is its stdout).
fn init_logs(args: &cli::Args) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match args.command {
        cli::Command::Demo { .. } => "warn,rumqttd=off",
        // rumqttd's connection handler logs every closed client connection as an ERROR; the
        // daemon reports the broker's real failures (bind, start) itself.
        // Its router logs a client that went away as an ERROR too ("no-connection id … is
        // already gone").
        _ => "info,rumqttd=warn,rumqttd::server::broker=off,rumqttd::router::routing=off",
    };
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level).unwrap_or_else(|e| {
            eprintln!("gridsentry: --log-level {level}: {e}; using {default}");
            EnvFilter::new(default)
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        cli::LogFormat::Json => logs.json().init(),
        // On a terminal, colours (ANSI escapes) and raw text; elsewhere (journald, files) every
        // control character a field carries is escaped, so no line can forge another.
        cli::LogFormat::Text if std::io::stderr().is_terminal() => logs.with_ansi(true).init(),
        cli::LogFormat::Text => logs.with_ansi(false).with_writer(gridsentry::logsafe::Escaped).init(),
    }
}

/// glibc gives each thread that meets contention an allocator arena of its own (up to 8 per
/// core), and each keeps the memory it once held: with the pipeline, its sync thread, the
/// runtime's workers and the blocking pool that was 3–8 MB of RSS more under load (bench:
/// 28.8 → 26.1 MB after the 1 % ladder, 47.2 → 39.1 MB after the churn ladder). Two arenas
/// cost nothing measurable here. `MALLOC_ARENA_MAX` in the environment still wins.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any other thread runs.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
