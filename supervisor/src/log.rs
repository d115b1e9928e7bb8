//! --log: every tracing event as one line, text or runc's JSON
//! (`{"level":"error","msg":"...","time":"..."}`), so containerd can read
//! the last error. The file is created at start, so it exists even when
//! the command fails.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::cli::LogFormat;

#[derive(Debug)]
pub struct LogLayer {
    file: Mutex<File>,
    format: LogFormat,
    max: Level,
}

impl LogLayer {
    pub fn open(path: &Path, format: LogFormat, debug: bool) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            format,
            max: if debug { Level::DEBUG } else { Level::INFO },
        })
    }
}

#[derive(Default)]
struct Message {
    msg: String,
    extra: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.extra.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.extra.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// One line in the chosen format.
pub fn line(format: LogFormat, level: &Level, msg: &str, time: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    match format {
        LogFormat::Json => {
            serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
        }
        LogFormat::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > self.max {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        let text = format!("{}{}", m.msg, m.extra);
        let l = line(
            self.format,
            event.metadata().level(),
            &text,
            &crate::state::now_rfc3339(),
        );
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_what_containerd_reads() {
        let l = line(
            LogFormat::Json,
            &Level::ERROR,
            "container \"x\" does not exist",
            "2026-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
    }
}
