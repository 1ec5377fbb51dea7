//! Everything a client's text frame reaches before an actor sees it: the
//! request parser and its validation, channel names, and the crisis
//! detector's normalisation (disguises undone, then words and sentences).
//! None may panic, whatever the bytes.

#![no_main]

use hearth_actors::model::channel_name::ChannelName;
use hearth_actors::therapy::crisis::detect_crisis;
use hearth_actors::therapy::unmask::unmask;
use hearth_actors::protocol::{parse_request, RequestBody, RequestLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = RequestLimits::default();
    if let Ok(request) = parse_request(text, &limits) {
        match request.body {
            RequestBody::Subscribe(subscribe) => {
                for name in subscribe.channels {
                    let _ = ChannelName::parse(&name);
                }
            }
            RequestBody::UserMessage(message) => {
                let _ = detect_crisis(&message.content.text);
            }
            _ => {}
        }
    }
    let _ = ChannelName::parse(text);
    // The normaliser's first step on its own: never a panic, and a second
    // pass finds nothing more to undo in most texts.
    let once = unmask(text);
    let _ = unmask(&once);
    let _ = detect_crisis(text);
});
