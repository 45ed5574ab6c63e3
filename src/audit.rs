//! The audit trail: one JSON line per write a client made (who, what, on which resource, with what outcome),
//! to stdout or an append-only file (`audit.destination`). Never a body, so never a password.

use std::io::Write;
use std::sync::Mutex;

use jiff::Timestamp;
use serde_json::json;

/// Where audit lines go.
pub struct Audit {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}

/// One write, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    pub principal: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub request_id: &'a str,
}

impl Audit {
    /// `stdout`, or a file path opened for appending.
    pub fn open(destination: &str) -> std::io::Result<Audit> {
        let sink: Box<dyn Write + Send> = if destination == "stdout" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(destination)?,
            )
        };
        Ok(Audit {
            sink: Mutex::new(sink),
        })
    }

    /// An audit trail into any writer (tests).
    pub fn to_writer(w: Box<dyn Write + Send>) -> Audit {
        Audit {
            sink: Mutex::new(w),
        }
    }

    pub fn record(&self, r: &AuditRecord<'_>) {
        let line = json!({
            "time": Timestamp::now().to_string(),
            "principal": r.principal,
            "method": r.method,
            "path": r.path,
            "status": r.status,
            "request_id": r.request_id,
        });
        if let Ok(mut sink) = self.sink.lock() {
            let _ = writeln!(sink, "{line}");
            let _ = sink.flush();
        }
    }
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
    fn one_json_line_per_write() {
        let buf = Buf::default();
        let audit = Audit::to_writer(Box::new(buf.clone()));
        audit.record(&AuditRecord {
            principal: "sailpoint",
            method: "PATCH",
            path: "/scim/v2/Groups/g1",
            status: 204,
            request_id: "req-7",
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["principal"], "sailpoint");
        assert_eq!(v["status"], 204);
        assert_eq!(text.lines().count(), 1);
    }
}
