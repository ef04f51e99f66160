//! The process's own figures (the names every Prometheus client library exports), read from
//! `/proc/self` at scrape time. Linux only; elsewhere the families are left out.

/// A process figure.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// Monotonic.
    Counter(f64),
    /// Current value.
    Gauge(f64),
}

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, fixed at 100 in Linux's ABI).
const TICKS: f64 = 100.0;

/// `(name, help, value)` of each figure that could be read.
pub fn families() -> Vec<(&'static str, &'static str, Value)> {
    let mut out = Vec::new();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        out.push((
            "process_cpu_seconds",
            "User and system CPU time spent, seconds.",
            Value::Counter((utime + stime) / TICKS),
        ));
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok()));
    if let (Some(start), Some(boot)) = (field(22), boot) {
        out.push((
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds.",
            Value::Gauge(boot + start / TICKS),
        ));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
    };
    if let Some(rss) = kb("VmRSS:") {
        out.push((
            "process_resident_memory_bytes",
            "Resident memory size, bytes.",
            Value::Gauge(rss * 1024.0),
        ));
    }
    if let Some(vm) = kb("VmSize:") {
        out.push(("process_virtual_memory_bytes", "Virtual memory size, bytes.", Value::Gauge(vm * 1024.0)));
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.push(("process_open_fds", "Open file descriptors.", Value::Gauge(fds.count() as f64)));
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files")?.split_whitespace().next()?.parse::<f64>().ok());
    if let Some(max) = max {
        out.push(("process_max_fds", "Most open file descriptors allowed.", Value::Gauge(max)));
    }
    out
}
