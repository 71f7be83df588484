//! The guard's audit log: one JSON object per line, written straight to its
//! sink (stderr or a file named in the policy's `[audit]` section), so it
//! stays JSON whatever `tracing` subscriber the host program installed and
//! whatever its log level is.
//!
//! Every request decision is a line (`"event": "decision"`) unless the
//! policy asks for blocked requests only; alerts, policy reloads, stream
//! ends and stream blocks are lines too. Detections are JSON arrays, never
//! strings holding JSON.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Which request decisions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuditLevel {
    /// Every request decision (the default).
    #[default]
    All,
    /// Only requests that were blocked, redacted, flagged or rejected.
    Detections,
    /// No decisions (alerts and reloads are still written).
    Off,
}

/// An open audit log.
pub struct AuditLog {
    sink: Mutex<Box<dyn Write + Send>>,
    level: AuditLevel,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("level", &self.level)
            .finish()
    }
}

impl AuditLog {
    /// An audit log on stderr.
    pub fn stderr(level: AuditLevel) -> AuditLog {
        AuditLog {
            sink: Mutex::new(Box::new(std::io::stderr())),
            level,
        }
    }

    /// An audit log appended to `path` (`-` is stderr).
    pub fn open(path: &str, level: AuditLevel) -> std::io::Result<AuditLog> {
        if path == "-" {
            return Ok(AuditLog::stderr(level));
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(path))?;
        Ok(AuditLog {
            sink: Mutex::new(Box::new(f)),
            level,
        })
    }

    /// An audit log that writes into `w` (tests, embedding programs).
    pub fn to_writer(w: Box<dyn Write + Send>, level: AuditLevel) -> AuditLog {
        AuditLog {
            sink: Mutex::new(w),
            level,
        }
    }

    /// Which decisions are written.
    pub fn level(&self) -> AuditLevel {
        self.level
    }

    /// Whether a decision with `detections` findings and `decision` should be written.
    pub fn wants_decision(&self, decision: &str, detections: usize) -> bool {
        match self.level {
            AuditLevel::All => true,
            AuditLevel::Detections => detections > 0 || decision != "allow",
            AuditLevel::Off => false,
        }
    }

    /// Writes one event: `{"timestamp": .., "event": event, ...fields}` on one line.
    pub fn write(&self, event: &str, fields: Value) {
        let mut obj = Map::new();
        obj.insert("timestamp".into(), Value::String(rfc3339_now()));
        obj.insert("event".into(), Value::String(event.into()));
        if let Value::Object(m) = fields {
            for (k, v) in m {
                obj.insert(k, v);
            }
        }
        let mut line = match serde_json::to_vec(&Value::Object(obj)) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        let mut g = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        // An audit sink that cannot be written (disk full, closed pipe) must not take the proxy down.
        let _ = g.write_all(&line);
        let _ = g.flush();
    }
}

/// Current UTC time as RFC 3339 with microseconds.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_micros())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`. The date
/// conversion is the days-to-civil algorithm of H. Hinnant,
/// "chrono-Compatible Low-Level Date Algorithms".
pub fn rfc3339(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(rfc3339(1_795_418_781, 0), "2026-11-23T07:26:21.000000Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59.000000Z");
    }

    #[test]
    fn lines_are_json_objects_with_arrays_for_detections() {
        let buf = Buf::default();
        let log = AuditLog::to_writer(Box::new(buf.clone()), AuditLevel::All);
        log.write(
            "decision",
            serde_json::json!({"request_id": 1, "detections": [{"rule": "AISEC-GUARD-001"}]}),
        );
        log.write("alert", serde_json::json!({"rule": "AISEC-GUARD-030"}));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "decision");
        assert_eq!(lines[0]["detections"][0]["rule"], "AISEC-GUARD-001");
        assert!(lines[1]["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn level_filters_decisions() {
        let l = AuditLog::stderr(AuditLevel::Detections);
        assert!(!l.wants_decision("allow", 0));
        assert!(l.wants_decision("allow", 1));
        assert!(l.wants_decision("block", 0));
        assert!(!AuditLog::stderr(AuditLevel::Off).wants_decision("block", 3));
        assert!(AuditLog::stderr(AuditLevel::All).wants_decision("allow", 0));
    }
}
