//! Prometheus metrics, kept in memory and written in the text exposition
//! format (version 0.0.4) by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Most label combinations kept per metric (bounds memory under hostile labels).
const MAX_SERIES: usize = 1000;

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The guard's metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn help(name: &str) -> &'static str {
    match name {
        "aisec_guard_requests_total" => "Requests handled, by route and decision.",
        "aisec_guard_detections_total" => "Scanner detections, by scanner, rule and action.",
        "aisec_guard_upstream_errors_total" => "Upstream failures, by kind.",
        "aisec_guard_alerts_total" => "Behaviour alerts raised, by rule.",
        "aisec_guard_policy_reloads_total" => "Policy reload attempts, by result.",
        "aisec_guard_scan_seconds" => "Time spent in the guard's own scanning, per request stage.",
        "aisec_guard_request_seconds" => "Whole request time through the guard, by route.",
        _ => "aisec guard metric.",
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, label_pairs: &[(&str, &str)]) {
        let key = (name, labels(label_pairs));
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.counters.len() >= MAX_SERIES && !g.counters.contains_key(&key) {
            return;
        }
        *g.counters.entry(key).or_insert(0) += 1;
    }

    /// Records a duration in seconds.
    pub fn observe(&self, name: &'static str, label_pairs: &[(&str, &str)], seconds: f64) {
        let key = (name, labels(label_pairs));
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.histograms.len() >= MAX_SERIES && !g.histograms.contains_key(&key) {
            return;
        }
        g.histograms.entry(key).or_default().observe(seconds);
    }

    /// Current value of a counter (0 if never incremented).
    pub fn counter(&self, name: &str, label_pairs: &[(&str, &str)]) -> u64 {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let l = labels(label_pairs);
        g.counters
            .iter()
            .find(|((n, k), _)| *n == name && *k == l)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, l), v) in &g.counters {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
                last = name;
            }
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
        last = "";
        for ((name, l), h) in &g.histograms {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
                last = name;
            }
            let sep = if l.is_empty() { "" } else { "," };
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.inc(
            "aisec_guard_requests_total",
            &[("route", "chat"), ("decision", "allow")],
        );
        m.inc(
            "aisec_guard_requests_total",
            &[("route", "chat"), ("decision", "allow")],
        );
        m.observe("aisec_guard_scan_seconds", &[("stage", "input")], 0.0003);
        let t = m.render();
        assert!(t.contains("# TYPE aisec_guard_requests_total counter"));
        assert!(
            t.contains("aisec_guard_requests_total{route=\"chat\",decision=\"allow\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("aisec_guard_scan_seconds_bucket{stage=\"input\",le=\"0.0005\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("aisec_guard_scan_seconds_bucket{stage=\"input\",le=\"0.00025\"} 0"),
            "{t}"
        );
        assert_eq!(
            m.counter(
                "aisec_guard_requests_total",
                &[("route", "chat"), ("decision", "allow")]
            ),
            2
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(labels(&[("a", "x\"y\n")]), "a=\"x\\\"y\\n\"");
    }
}
