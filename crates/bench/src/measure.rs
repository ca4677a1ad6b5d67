//! Small measuring helpers shared by the benchmarks.

use serde_json::Value;

/// CPU seconds (user + system) this process used so far (Linux; 0 elsewhere).
pub(crate) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (in parentheses, which may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's peak resident set size in KiB (`VmHWM` in `/proc/self/status`; Linux).
pub(crate) fn peak_rss_kib() -> Result<u64, String> {
    status_kib("VmHWM:")
}

/// This process's resident set size now, in KiB (`VmRSS` in `/proc/self/status`; Linux).
pub(crate) fn rss_kib() -> Result<u64, String> {
    status_kib("VmRSS:")
}

/// The KiB figure of the `/proc/self/status` line starting with `key`.
fn status_kib(key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {key} line in /proc/self/status"))
}

/// Operations, wall seconds and CPU seconds accumulated over the slices of one contender.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Tally {
    /// Operations done.
    pub(crate) ops: usize,
    /// Wall-clock seconds spent doing them.
    pub(crate) secs: f64,
    /// CPU seconds this process spent meanwhile.
    pub(crate) cpu: f64,
}

impl Tally {
    /// Operations per second over everything tallied.
    pub(crate) fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Client CPU microseconds per operation.
    pub(crate) fn cpu_us_per_op(&self) -> f64 {
        1e6 * self.cpu / self.ops.max(1) as f64
    }
}

/// The median of `values` (the upper one of an even count), with the minimum and maximum;
/// zeros for no values.
pub(crate) fn median_min_max(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (
        v.get(v.len() / 2).copied().unwrap_or(0.0),
        v.first().copied().unwrap_or(0.0),
        v.last().copied().unwrap_or(0.0),
    )
}

/// `x` rounded to three decimals.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs this binary again with `args` (a hidden child subcommand) and returns the JSON object
/// its last line of stdout holds; `what` names the child in errors.
pub(crate) fn child_json<S: AsRef<std::ffi::OsStr>>(
    what: &str,
    args: &[S],
) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let output = std::process::Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start the {what} child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the {what} child failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("the {what} child printed no JSON: {stdout:?}"))
}

/// The number `key` of a child's JSON object.
pub(crate) fn json_f64(what: &str, object: &Value, key: &str) -> Result<f64, String> {
    object
        .get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("the {what} child's output lacks {key}: {object}"))
}
