//! Log lines as `<time> <level> <event> key=value ...`. The events write
//! their own key=value pairs; this only frames them.

use std::io::Write;

pub fn init(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format(|out, record| {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            // actix-http reports a client's malformed request as an error
            // of its own; a client must not be able to write ERROR lines at
            // will, so these become warnings in the usual key=value shape.
            if record.level() == log::Level::Error && record.target().starts_with("actix_http") {
                let detail = record.args().to_string().replace('"', "'");
                return writeln!(out, "{time} WARN http_protocol_error detail=\"{detail}\"");
            }
            writeln!(out, "{time} {} {}", record.level(), record.args())
        })
        .try_init();
}
