//! Log lines as `<time> <level> <event> key=value ...`. The events write
//! their own key=value pairs; this only frames them.

use std::io::Write;

pub fn init(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format(|out, record| {
            writeln!(
                out,
                "{} {} {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                record.level(),
                record.args()
            )
        })
        .try_init();
}
