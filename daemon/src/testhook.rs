//! Fault injection for the test suite, compiled into debug builds only.
//!
//! Tests run the debug binary and set an environment variable to make a fault happen at an
//! exact point, so that they need no timing luck: `GRIDSENTRY_TEST_STALL=<stage>` makes that
//! stage stop making progress when it next has work; `GRIDSENTRY_TEST_PAUSE_AFTER_COMMIT=<n>`
//! parks the pipeline after its n-th commit of readings, before their acks go anywhere, and
//! prints `test hook: paused after commit <n>` on stderr (the crash test SIGKILLs it there);
//! `GRIDSENTRY_TEST_COMMIT_US_PER_READING=<us>` makes every commit take that long per reading
//! (a slow disk: the overload test offers more than that sustains);
//! `GRIDSENTRY_TEST_END=<stage>` makes that stage's task return as soon as it starts;
//! `GRIDSENTRY_TEST_SLEEP_BEFORE_COMMIT=<n>:<ms>` makes a pipeline sleep before its n-th commit
//! of readings, after printing `test hook: sleeping before commit <n>` (the cluster test pauses
//! the worker there, so that a batch is in flight when another worker takes its partition).
//! Release builds read no such variable: these functions do nothing there.

/// Blocks this thread forever if the test asked `stage` to stall.
pub fn stall(stage: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("GRIDSENTRY_TEST_STALL").is_ok_and(|s| s == stage) {
        eprintln!("test hook: stage {stage} stalled");
        park();
    }
    #[cfg(not(debug_assertions))]
    let _ = stage;
}

/// True if the test asked `stage` to end (its task then returns at once).
pub fn end(stage: &str) -> bool {
    #[cfg(debug_assertions)]
    if std::env::var("GRIDSENTRY_TEST_END").is_ok_and(|s| s == stage) {
        eprintln!("test hook: stage {stage} ends");
        return true;
    }
    #[cfg(not(debug_assertions))]
    let _ = stage;
    false
}

/// Blocks forever after the `commits`-th commit if the test asked for it.
pub fn after_commit(commits: u64) {
    #[cfg(debug_assertions)]
    if std::env::var("GRIDSENTRY_TEST_PAUSE_AFTER_COMMIT").is_ok_and(|n| n == commits.to_string()) {
        eprintln!("test hook: paused after commit {commits}");
        park();
    }
    #[cfg(not(debug_assertions))]
    let _ = commits;
}

/// Sleeps before the `commits`-th commit of readings if the test asked for it.
pub fn before_commit(commits: u64) {
    #[cfg(debug_assertions)]
    if let Some((n, ms)) = std::env::var("GRIDSENTRY_TEST_SLEEP_BEFORE_COMMIT").ok().and_then(|v| {
        v.split_once(':').and_then(|(n, ms)| Some((n.parse::<u64>().ok()?, ms.parse::<u64>().ok()?)))
    }) {
        if n == commits {
            eprintln!("test hook: sleeping before commit {commits}");
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = commits;
}

/// Sleeps `readings` × the configured time if the test asked for slow commits.
pub fn slow_commit(readings: usize) {
    #[cfg(debug_assertions)]
    if let Some(us) =
        std::env::var("GRIDSENTRY_TEST_COMMIT_US_PER_READING").ok().and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_micros(us.saturating_mul(readings as u64)));
    }
    #[cfg(not(debug_assertions))]
    let _ = readings;
}

#[cfg(debug_assertions)]
fn park() -> ! {
    loop {
        std::thread::park();
    }
}
