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
    gauges: BTreeMap<(&'static str, String), f64>,
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
        "aisec_guard_drift_psi" => "Population stability index of a model input feature (or the predicted class) over the recent window against the reference sample.",
        "aisec_guard_drift_ks" => "Two-sample Kolmogorov-Smirnov statistic of a model input feature over the recent window against the reference sample.",
        "aisec_guard_drift_features_alerting" => "Model input features whose drift is over its alert threshold in the recent window.",
        "aisec_guard_class_share" => "Share of each predicted class in the recent window.",
        "aisec_guard_model_score" => "Last out-of-distribution / adversarial score of a model input, by detector.",
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

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, label_pairs: &[(&str, &str)], value: f64) {
        let key = (name, labels(label_pairs));
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.gauges.len() >= MAX_SERIES && !g.gauges.contains_key(&key) {
            return;
        }
        g.gauges.insert(key, value);
    }

    /// Current value of a gauge, if set.
    pub fn gauge(&self, name: &str, label_pairs: &[(&str, &str)]) -> Option<f64> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let l = labels(label_pairs);
        g.gauges
            .iter()
            .find(|((n, k), _)| *n == name && *k == l)
            .map(|(_, v)| *v)
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
        for ((name, l), v) in &g.gauges {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", help(name));
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
    fn renders_gauges() {
        let m = Metrics::default();
        m.set("aisec_guard_drift_psi", &[("feature", "3")], 0.5);
        m.set("aisec_guard_drift_psi", &[("feature", "3")], 0.25);
        let t = m.render();
        assert!(t.contains("# TYPE aisec_guard_drift_psi gauge"), "{t}");
        assert!(
            t.contains("aisec_guard_drift_psi{feature=\"3\"} 0.25"),
            "{t}"
        );
        assert_eq!(
            m.gauge("aisec_guard_drift_psi", &[("feature", "3")]),
            Some(0.25)
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(labels(&[("a", "x\"y\n")]), "a=\"x\\\"y\\n\"");
    }
}
