//! Log lines, one event each with its key=value pairs: `[log] format =
//! "text"` writes `<time> <LEVEL> <event> key=value ...` (logfmt: a value
//! with a space, a quote or an equals sign is quoted and escaped), `"json"`
//! writes one object per line with the same keys. Events log their pairs
//! as structured values (`log::info!(player_id:% = p; "ws_connect")`); the
//! framing and escaping are here. Hand-written because it is a few lines
//! over `log`'s key-value visitor and Hearth's own line shape.

use std::fmt::Write as _;
use std::io::Write;

use log::kv::{Key, Value, VisitSource};

use crate::config::LogConfig;

/// The pairs of one record, in the order they were written.
#[derive(Default)]
struct Pairs(Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Pairs {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// A value as logfmt writes it: bare when it can be, else quoted with `"`,
/// `\` and control characters escaped.
pub fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:04x}}}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The event and pairs of a record. Hearth's records name their event in
/// the message; another crate's message is prose, kept as `msg`.
fn event_of(record: &log::Record) -> (String, Vec<(String, String)>) {
    let mut pairs = Pairs::default();
    let _ = record.key_values().visit(&mut pairs);
    let message = record.args().to_string();
    // actix-http reports a client's malformed request as an error of its
    // own; a client must not be able to write ERROR lines at will.
    if record.target().starts_with("actix_http") && record.level() == log::Level::Error {
        return (
            "http_protocol_error".into(),
            vec![("detail".into(), message)],
        );
    }
    let is_event = !message.is_empty()
        && message
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if is_event {
        return (message, pairs.0);
    }
    let mut fields = vec![
        ("target".to_string(), record.target().to_string()),
        ("msg".to_string(), message),
    ];
    fields.extend(pairs.0);
    ("log".into(), fields)
}

fn level_of(record: &log::Record) -> log::Level {
    if record.target().starts_with("actix_http") && record.level() == log::Level::Error {
        log::Level::Warn
    } else {
        record.level()
    }
}

pub fn text_line(time: &str, record: &log::Record) -> String {
    let (event, pairs) = event_of(record);
    let mut line = format!("{time} {} {event}", level_of(record));
    for (key, value) in pairs {
        let _ = write!(line, " {key}={}", logfmt_value(&value));
    }
    line
}

pub fn json_line(time: &str, record: &log::Record) -> String {
    let (event, pairs) = event_of(record);
    let mut object = serde_json::Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), level_of(record).as_str().into());
    object.insert("event".into(), event.into());
    for (key, value) in pairs {
        object.insert(key, value.into());
    }
    serde_json::Value::Object(object).to_string()
}

pub fn init(settings: &LogConfig) {
    let mut filter = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.level.clone());
    if !settings.frames {
        // One line per client frame records when and how much each player
        // wrote: only when asked for.
        filter.push_str(",hearth::frame=off");
    }
    let json = settings.format == "json";
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format(move |out, record| {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let line = if json {
                json_line(&time, record)
            } else {
                text_line(&time, record)
            };
            writeln!(out, "{line}")
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_line(json: bool, build: impl FnOnce(&mut dyn FnMut(&log::Record))) -> String {
        let mut line = String::new();
        build(&mut |record| {
            line = if json {
                json_line("T", record)
            } else {
                text_line("T", record)
            };
        });
        line
    }

    #[test]
    fn values_are_escaped_and_json_has_the_same_keys() {
        let kvs: [(&str, &str); 3] = [
            ("player_id", "alice"),
            ("error", "a \"quoted\" = thing\nnext"),
            ("empty", ""),
        ];
        let emit = |f: &mut dyn FnMut(&log::Record)| {
            let source: &dyn log::kv::Source = &kvs;
            f(&log::Record::builder()
                .args(format_args!("ws_event"))
                .level(log::Level::Info)
                .target("hearth")
                .key_values(source)
                .build());
        };
        let text = record_line(false, emit);
        assert_eq!(
            text,
            r#"T INFO ws_event player_id=alice error="a \"quoted\" = thing\nnext" empty="""#
        );
        let json: serde_json::Value = serde_json::from_str(&record_line(true, emit)).unwrap();
        assert_eq!(json["event"], "ws_event");
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["player_id"], "alice");
        assert_eq!(json["error"], "a \"quoted\" = thing\nnext");
    }

    #[test]
    fn another_crates_prose_is_kept_as_msg() {
        let text = record_line(false, |f| {
            f(&log::Record::builder()
                .args(format_args!("Starting 2 workers"))
                .level(log::Level::Info)
                .target("actix_server::builder")
                .build())
        });
        assert_eq!(
            text,
            r#"T INFO log target=actix_server::builder msg="Starting 2 workers""#
        );
    }

    #[test]
    fn a_clients_bad_request_is_no_error() {
        let text = record_line(false, |f| {
            f(&log::Record::builder()
                .args(format_args!("stream error: bad header"))
                .level(log::Level::Error)
                .target("actix_http::h1::dispatcher")
                .build())
        });
        assert_eq!(
            text,
            r#"T WARN http_protocol_error detail="stream error: bad header""#
        );
    }
}
