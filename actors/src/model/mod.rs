//! The shared vocabulary every other module speaks: identifiers that
//! validate on construction, channel names, timestamps and progress
//! markers. It imports nothing of Hearth's.

pub mod channel_name;
pub mod ids;
pub mod progress;
pub mod time;
