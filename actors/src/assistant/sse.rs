//! The event-stream format (server-sent events) as model servers send it:
//! lines ended by `\r\n`, `\n` or `\r`; `field: value` lines; a blank line
//! ends an event; `:` lines are comments (keep-alives); an event's `data`
//! lines are joined with `\n`. Bytes come in network reads that may split
//! a line, or a `\r\n`, anywhere.
//!
//! Written here rather than taken from a crate: it is a few dozen lines,
//! it is fed the bytes the HTTP client already holds, and it must bound
//! what it buffers; the crates that do this either bring an HTTP client of
//! their own or grow their buffer without limit. Only `data` matters to a
//! chat-completions stream, so `event`, `id` and `retry` are read and
//! dropped.

use std::collections::VecDeque;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SseError {
    /// One event (its lines so far and the line being read) is over the cap.
    #[error("an event is longer than {0} bytes")]
    TooLong(usize),
    #[error("a line is not UTF-8")]
    NotUtf8,
}

/// Turns the bytes of an event stream into the `data` of each event.
pub struct SseParser {
    /// The line being read, without its end.
    line: Vec<u8>,
    /// The event being read: each `data` value followed by `\n`.
    data: String,
    /// The last byte fed ended a line with `\r`: a `\n` first in the next
    /// read belongs to that line end.
    after_cr: bool,
    /// No line has ended yet: the first may start with a byte-order mark.
    first_line: bool,
    max_event: usize,
}

const BOM: &str = "\u{feff}";

impl SseParser {
    /// A parser that fails once one event (what it has buffered of it)
    /// would exceed `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        SseParser {
            line: Vec::new(),
            data: String::new(),
            after_cr: false,
            first_line: true,
            max_event,
        }
    }

    /// Reads `bytes`, the next part of the stream, and appends the data of
    /// every event it completes to `events`. After an error the stream is
    /// unusable and the parser should be dropped.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        events: &mut VecDeque<String>,
    ) -> Result<(), SseError> {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) {
            self.extend_line(&bytes[..end])?;
            self.end_line(events)?;
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[next..];
        }
        self.extend_line(bytes)
    }

    fn extend_line(&mut self, more: &[u8]) -> Result<(), SseError> {
        if self.data.len() + self.line.len() + more.len() > self.max_event {
            return Err(SseError::TooLong(self.max_event));
        }
        self.line.extend_from_slice(more);
        Ok(())
    }

    fn end_line(&mut self, events: &mut VecDeque<String>) -> Result<(), SseError> {
        let result = self.take_line(events);
        self.line.clear();
        self.first_line = false;
        result
    }

    fn take_line(&mut self, events: &mut VecDeque<String>) -> Result<(), SseError> {
        if self.line.is_empty() {
            // A blank line ends the event; one without data is no event.
            if self.data.pop().is_some() {
                events.push_back(std::mem::take(&mut self.data));
            }
            return Ok(());
        }
        if self.line[0] == b':' {
            return Ok(());
        }
        let mut line = std::str::from_utf8(&self.line).map_err(|_| SseError::NotUtf8)?;
        if self.first_line {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            self.data.push_str(value);
            self.data.push('\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(parts: &[&[u8]]) -> Result<Vec<String>, SseError> {
        let mut parser = SseParser::new(1 << 20);
        let mut events = VecDeque::new();
        for part in parts {
            parser.feed(part, &mut events)?;
        }
        Ok(events.into())
    }

    fn parse(stream: &str) -> Vec<String> {
        parse_in(&[stream.as_bytes()]).unwrap()
    }

    #[test]
    fn data_lines_separated_by_blank_lines_are_events() {
        assert_eq!(
            parse("data: {\"a\":1}\n\ndata: [DONE]\n\n"),
            ["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn every_line_end_is_understood() {
        let expected = ["one", "two", "three"];
        assert_eq!(
            parse("data: one\r\n\r\ndata: two\r\n\r\ndata: three\r\n\r\n"),
            expected
        );
        assert_eq!(parse("data: one\r\rdata: two\r\rdata: three\r\r"), expected);
        assert_eq!(
            parse("data: one\n\r\ndata: two\r\rdata: three\r\n\n"),
            expected
        );
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let stream =
            ": keep-alive\n\nevent: message\nid: 7\nretry: 100\ndata: x\n: inside\n\n:\n\n";
        assert_eq!(parse(stream), ["x"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        assert_eq!(parse("data: a\ndata:b\ndata:  c\ndata\n\n"), ["a\nb\n c\n"]);
        // An event of one empty data line is still an event.
        assert_eq!(parse("data:\n\n"), [""]);
        assert_eq!(parse("data: has: colon\n\n"), ["has: colon"]);
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_complete() {
        assert_eq!(parse("data: one\n\ndata: two\n"), ["one"]);
        assert_eq!(parse("data: one\n\ndata: tw"), ["one"]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        assert_eq!(parse("\u{feff}data: x\n\n"), ["x"]);
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let stream = "\u{feff}: hi\r\ndata: {\"text\":\"héllo\"}\r\n\r\ndata: a\rdata: b\r\r\ndata: [DONE]\n\n";
        let whole = parse(stream);
        assert_eq!(whole, ["{\"text\":\"héllo\"}", "a\nb", "[DONE]"]);
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(parse_in(&[a, b]).unwrap(), whole, "cut at {cut}");
            for second in cut..=bytes.len() {
                let (b, c) = bytes[cut..].split_at(second - cut);
                assert_eq!(parse_in(&[a, b, c]).unwrap(), whole, "{cut}, {second}");
            }
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_in(&one_by_one).unwrap(), whole);
    }

    #[test]
    fn an_event_over_the_cap_fails_whether_one_line_or_many() {
        let mut parser = SseParser::new(16);
        let mut events = VecDeque::new();
        assert_eq!(parser.feed(b"data: 0123456789\n\n", &mut events), Ok(()));
        assert_eq!(
            parser.feed(b"data: 0123456789abcdef", &mut events),
            Err(SseError::TooLong(16))
        );

        let mut parser = SseParser::new(16);
        parser.feed(b"data: 01234\n", &mut events).unwrap();
        assert_eq!(
            parser.feed(b"data: 56789\n", &mut events),
            Err(SseError::TooLong(16))
        );

        // A line with no end yet is held, and bounded, across reads.
        let mut parser = SseParser::new(16);
        for _ in 0..16 {
            parser.feed(b":", &mut events).unwrap();
        }
        assert_eq!(parser.feed(b":", &mut events), Err(SseError::TooLong(16)));
        assert_eq!(events, ["0123456789"]);
    }

    #[test]
    fn a_line_that_is_not_utf8_fails() {
        assert_eq!(parse_in(&[b"data: \xff\xfe\n\n"]), Err(SseError::NotUtf8));
    }
}
