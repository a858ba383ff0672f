//! Criterion benches and the perf-report of govchain, each measured against a
//! baseline in the same run.
//!
//! The `perf-report` binary prints one JSON object per line:
//! `{"area","metric","value","unit","baseline","baseline_value","ratio"}`,
//! where `ratio = value / baseline_value`, both in `unit`. A unit ending in
//! `/s` is a rate (higher is better); any other unit is a time or a size
//! (lower is better). A metric compared against two baselines gets two rows.
//!
//! ```
//! use govchain_benches::Row;
//! let row = Row::new("core", "example", 2.0, "ms", "twice", 4.0);
//! assert_eq!(row.ratio(), 0.5);
//! assert!(row.to_json().starts_with("{\"area\":\"core\""));
//! ```

use std::time::{Duration, Instant};

pub mod consensus;
pub mod core;
pub mod identity;
pub mod network;
pub mod node;
pub mod storage;

/// One line of the perf report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Report area (`core`, `storage`, …).
    pub area: &'static str,
    /// Stable metric name.
    pub metric: String,
    /// Measured value, in `unit`.
    pub value: f64,
    /// Unit of `value` and `baseline_value`.
    pub unit: &'static str,
    /// Name of the baseline measured in the same run.
    pub baseline: String,
    /// Baseline value, in `unit`.
    pub baseline_value: f64,
}

impl Row {
    /// A row; `ratio` is derived.
    pub fn new(
        area: &'static str,
        metric: impl Into<String>,
        value: f64,
        unit: &'static str,
        baseline: impl Into<String>,
        baseline_value: f64,
    ) -> Self {
        Row {
            area,
            metric: metric.into(),
            value,
            unit,
            baseline: baseline.into(),
            baseline_value,
        }
    }

    /// `value / baseline_value`.
    pub fn ratio(&self) -> f64 {
        self.value / self.baseline_value
    }

    /// The row as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"area\":{},\"metric\":{},\"value\":{},\"unit\":{},\"baseline\":{},\"baseline_value\":{},\"ratio\":{}}}",
            json_str(self.area),
            json_str(&self.metric),
            json_num(self.value),
            json_str(self.unit),
            json_str(&self.baseline),
            json_num(self.baseline_value),
            json_num(self.ratio()),
        )
    }

    /// Prints the row to stdout at once, so long reports show progress.
    pub fn emit(&self) {
        println!("{}", self.to_json());
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{}", (x * 1e6).round() / 1e6)
    } else {
        "null".to_owned()
    }
}

/// Runs `f` `runs` times (after one warm-up) and returns the median duration.
/// The median resists the odd slow run on a shared 2-core machine.
pub fn median_time<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Progress output for long measurements goes to stderr, keeping stdout JSON.
pub fn progress(msg: &str) {
    eprintln!("[perf-report] {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_row_fields_and_ratio() {
        let row = Row::new("core", "m\"x", 3.0, "tx/s", "base", 1.5);
        assert_eq!(row.ratio(), 2.0);
        assert_eq!(
            row.to_json(),
            "{\"area\":\"core\",\"metric\":\"m\\\"x\",\"value\":3,\"unit\":\"tx/s\",\"baseline\":\"base\",\"baseline_value\":1.5,\"ratio\":2}"
        );
    }
}
