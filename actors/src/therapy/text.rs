//! Text normalisation shared by crisis detection and the reply engine.
//!
//! This module owns what "the same words" means in Hearth. A user's message
//! and every phrase it is compared with go through [`NormalizedText::new`],
//! so a phrase written in plain English matches the message however it was
//! typed: case, curly apostrophes, contractions, stretched letters and
//! punctuation are all reduced away. Sentences are kept apart so that a
//! phrase never matches across a sentence end.
//!
//! Two refinements beyond a plain sentence split, both there so that a
//! crisis written in an unusual style is not missed:
//! - an ellipsis (`..`, `...`, `…`) is a pause, not a sentence end
//!   ("I want to... die" stays one sentence);
//! - consecutive one-word sentences are joined ("I. Want. To. Die.").

use std::ops::Range;

use crate::therapy::unmask::unmask;

/// Text reduced to comparable words: lower-cased; curly apostrophes/quotes folded to ASCII; contractions expanded
/// (can't/cant -> can not, won't/wont -> will not, don't/dont -> do not, n't -> not, i'm/im -> i am, 're -> are, 've -> have, 'll -> will, 'd -> would, it's -> it is ...);
/// punctuation becomes a word break; "my self" -> "myself"; hyphenated "self-harm" -> "self harm";
/// every run of one repeated letter collapsed to a single letter ("sooo" -> "so", "killll" -> "kil", "feel" -> "fel")
/// so that stretched spellings match; sentences are kept apart (split on . ! ? ; and newlines) so a phrase never matches across sentences.
///
/// Also: common Latin accents are folded ("café" -> "cafe"), combining marks
/// and zero-width characters are dropped, "wanna"/"gonna" become "want to" /
/// "going to", and a possessive "'s" is dropped ("mom's" -> "mom").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizedText {
    words: Vec<String>,
    /// Parallel to `words`: whether punctuation that does not end a sentence
    /// (comma, dash, emoji, ellipsis ...) stands just before the word. Patterns
    /// use it to tell "I can't go on, ..." from "I can't go on the trip".
    break_before: Vec<bool>,
    sentences: Vec<Range<usize>>,
}

impl NormalizedText {
    pub fn new(text: &str) -> Self {
        // Disguised letters first (`k1ll`, `ｋｉｌｌ`, `k i l l`), so that
        // every rule sees the word as written plainly.
        let text = unmask(text);
        let text = text.as_ref();
        let mut builder = Builder::new(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                builder.feed(c.to_ascii_lowercase());
            } else {
                for lower in c.to_lowercase() {
                    builder.feed(lower);
                }
            }
        }
        builder.finish()
    }

    /// true when `phrase` (normalised the same way) occurs as whole consecutive words within one sentence
    pub fn has_phrase(&self, phrase: &str) -> bool {
        self.contains_words(&NormalizedText::new(phrase).words)
    }

    /// true when any of the phrases occurs
    pub fn has_any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|phrase| self.has_phrase(phrase))
    }

    pub fn sentences(&self) -> impl Iterator<Item = &[String]> {
        self.sentences
            .iter()
            .map(|range| self.words.get(range.clone()).unwrap_or(&[]))
    }

    /// Each sentence as a range of indices into [`Self::words`].
    pub(crate) fn sentence_ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.sentences.iter().cloned()
    }

    /// All words, sentence boundaries ignored.
    pub(crate) fn words(&self) -> &[String] {
        &self.words
    }

    /// Parallel to [`Self::words`]: whether a clause break (comma, dash,
    /// emoji, ellipsis ...) stands just before the word.
    pub(crate) fn breaks(&self) -> &[bool] {
        &self.break_before
    }

    pub(crate) fn into_words(self) -> Vec<String> {
        self.words
    }

    fn contains_words(&self, needle: &[String]) -> bool {
        !needle.is_empty()
            && self.sentences().any(|sentence| {
                sentence
                    .windows(needle.len())
                    .any(|window| window == needle)
            })
    }
}

enum Class {
    Letter(char),
    Apostrophe,
    Hyphen,
    Space,
    ClauseBreak,
    SentenceEnd,
    Ignored,
}

/// Classifies an already lower-cased character. '.' is handled by the caller
/// because telling a full stop from an ellipsis needs the next character.
fn classify(c: char) -> Class {
    match c {
        'a'..='z' | '0'..='9' => Class::Letter(c),
        '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{2032}' | '\u{00B4}'
        | '\u{FF07}' => Class::Apostrophe,
        '!'
        | '?'
        | ';'
        | '\n'
        | '\r'
        | '\u{0085}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{203C}'
        | '\u{2047}'..='\u{2049}'
        | '\u{3002}'
        | '\u{FF01}'
        | '\u{FF0E}'
        | '\u{FF1B}'
        | '\u{FF1F}' => Class::SentenceEnd,
        '-' | '\u{2010}' | '\u{2011}' => Class::Hyphen,
        // Invisible or decorating: dropping them keeps the word whole.
        '\u{00AD}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}' => Class::Ignored,
        'à'..='å' => Class::Letter('a'),
        'ç' => Class::Letter('c'),
        'è'..='ë' => Class::Letter('e'),
        'ì'..='ï' => Class::Letter('i'),
        'ñ' => Class::Letter('n'),
        'ò'..='ö' | 'ø' => Class::Letter('o'),
        'ù'..='ü' => Class::Letter('u'),
        'ý' | 'ÿ' => Class::Letter('y'),
        c if c.is_whitespace() => Class::Space,
        c if c.is_alphanumeric() => Class::Letter(c),
        _ => Class::ClauseBreak,
    }
}

/// Contractions typed without an apostrophe, in letter-collapsed form.
/// Words that are also ordinary English ("its", "ill", "id", "were", "well")
/// are deliberately absent.
fn plain_contraction(token: &str) -> Option<&'static [&'static str]> {
    Some(match token {
        "cant" | "canot" => &["can", "not"],
        "wont" => &["wil", "not"],
        "dont" => &["do", "not"],
        "didnt" => &["did", "not"],
        "doesnt" => &["does", "not"],
        "isnt" => &["is", "not"],
        "wasnt" => &["was", "not"],
        "arent" => &["are", "not"],
        "werent" => &["were", "not"],
        "havent" => &["have", "not"],
        "hasnt" => &["has", "not"],
        "hadnt" => &["had", "not"],
        "couldnt" => &["could", "not"],
        "wouldnt" => &["would", "not"],
        "shouldnt" => &["should", "not"],
        "mustnt" => &["must", "not"],
        "aint" => &["is", "not"],
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "youre" => &["you", "are"],
        "theyre" => &["they", "are"],
        "thats" => &["that", "is"],
        "whats" => &["what", "is"],
        "theres" => &["there", "is"],
        "shes" => &["she", "is"],
        "hes" => &["he", "is"],
        "wouldve" => &["would", "have"],
        "couldve" => &["could", "have"],
        "shouldve" => &["should", "have"],
        "wana" => &["want", "to"],
        "gona" => &["going", "to"],
        "gota" => &["got", "to"],
        "hafta" => &["have", "to"],
        "tryna" => &["trying", "to"],
        "leme" => &["let", "me"],
        _ => return None,
    })
}

/// The verb before "n't": "don" -> "do", "can" -> "can", "won" -> "will".
fn negated_stem(stem: &str) -> &str {
    match stem {
        "can" => "can",
        "won" => "wil",
        "shan" => "shal",
        "ain" => "is",
        _ => stem.strip_suffix('n').unwrap_or(stem),
    }
}

/// Words whose "'s" means "is" rather than a possessive.
fn takes_is(word: &str) -> bool {
    matches!(
        word,
        "it" | "that"
            | "what"
            | "there"
            | "here"
            | "he"
            | "she"
            | "who"
            | "where"
            | "how"
            | "when"
            | "why"
            | "this"
            | "everything"
            | "nothing"
            | "something"
            | "everyone"
            | "someone"
            | "nobody"
            | "somebody"
            | "everybody"
            | "life"
            | "mind"
            | "heart"
            | "head"
            | "chest"
    )
}

struct Builder {
    out: NormalizedText,
    token: String,
    /// Consecutive '.' not yet interpreted: one ends a sentence, more are an ellipsis.
    dots: u8,
    pending_break: bool,
    fragment_start: usize,
    fragment_tokens: usize,
    previous_fragment_single: bool,
}

impl Builder {
    fn new(text_len: usize) -> Self {
        let expected_words = (text_len / 4).clamp(4, 1024);
        Builder {
            out: NormalizedText {
                words: Vec::with_capacity(expected_words),
                break_before: Vec::with_capacity(expected_words),
                sentences: Vec::new(),
            },
            token: String::with_capacity(32),
            dots: 0,
            pending_break: false,
            fragment_start: 0,
            fragment_tokens: 0,
            previous_fragment_single: false,
        }
    }

    fn feed(&mut self, c: char) {
        if c == '.' {
            self.end_token();
            self.dots = self.dots.saturating_add(1);
            return;
        }
        if self.dots > 0 {
            self.resolve_dots();
        }
        match classify(c) {
            Class::Letter(c) => {
                if !(c.is_alphabetic() && self.token.ends_with(c)) {
                    self.token.push(c);
                }
            }
            Class::Apostrophe => {
                // A leading apostrophe is an opening quote, not part of the word.
                if !self.token.is_empty() && !self.token.ends_with('\'') {
                    self.token.push('\'');
                }
            }
            Class::Hyphen => {
                // Inside a word a hyphen only separates ("self-harm"); on its
                // own (" - ") it is a dash.
                if self.token.is_empty() {
                    self.pending_break = true;
                } else {
                    self.end_token();
                }
            }
            Class::Space => self.end_token(),
            Class::ClauseBreak => {
                self.end_token();
                self.pending_break = true;
            }
            Class::SentenceEnd => {
                self.end_token();
                self.end_sentence();
            }
            Class::Ignored => {}
        }
    }

    fn finish(mut self) -> NormalizedText {
        self.dots = 0;
        self.end_token();
        self.end_sentence();
        self.out
    }

    fn resolve_dots(&mut self) {
        if self.dots == 1 {
            self.end_sentence();
        } else {
            self.pending_break = true;
        }
        self.dots = 0;
    }

    fn end_token(&mut self) {
        if self.token.is_empty() {
            return;
        }
        // Taken out and put back so its capacity is reused for the next token.
        let mut token = std::mem::take(&mut self.token);
        self.emit_token(&token);
        token.clear();
        self.token = token;
    }

    fn emit_token(&mut self, token: &str) {
        let token = token.trim_matches('\'');
        if token.is_empty() {
            return;
        }
        if !token.contains('\'') {
            match plain_contraction(token) {
                Some(words) => words.iter().for_each(|word| self.push_word(word)),
                None => self.push_word(token),
            }
        } else {
            let mut parts = token.split('\'').filter(|part| !part.is_empty()).peekable();
            let Some(stem) = parts.next() else {
                return;
            };
            let mut previous = stem;
            if parts.peek() == Some(&"t") && stem.ends_with('n') {
                parts.next();
                self.push_word(negated_stem(stem));
                self.push_word("not");
                previous = "not";
            } else {
                self.push_word(stem);
            }
            for suffix in parts {
                let word = match suffix {
                    "t" => "not",
                    "m" => "am",
                    "re" => "are",
                    "ve" => "have",
                    "l" => "wil",
                    "d" => "would",
                    "s" if takes_is(previous) => "is",
                    "s" if previous == "let" => "us",
                    "s" => continue,
                    other => other,
                };
                self.push_word(word);
                previous = word;
            }
        }
        self.fragment_tokens += 1;
    }

    fn push_word(&mut self, word: &str) {
        if word == "self" && !self.pending_break && self.out.words.len() > self.fragment_start {
            if let Some(last) = self.out.words.last_mut() {
                let merged = match last.as_str() {
                    "my" => Some("myself"),
                    "your" => Some("yourself"),
                    "him" => Some("himself"),
                    "her" => Some("herself"),
                    "it" => Some("itself"),
                    _ => None,
                };
                if let Some(merged) = merged {
                    merged.clone_into(last);
                    return;
                }
            }
        }
        self.out
            .break_before
            .push(std::mem::take(&mut self.pending_break));
        self.out.words.push(word.to_owned());
    }

    fn end_sentence(&mut self) {
        let end = self.out.words.len();
        if self.fragment_tokens > 0 {
            let single = self.fragment_tokens == 1;
            let joined = single && self.previous_fragment_single;
            match self.out.sentences.last_mut() {
                Some(last) if joined => last.end = end,
                _ => self.out.sentences.push(self.fragment_start..end),
            }
            self.previous_fragment_single = single;
        }
        self.fragment_start = end;
        self.fragment_tokens = 0;
        self.pending_break = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        NormalizedText::new(text).into_words()
    }

    fn sentences(text: &str) -> Vec<Vec<String>> {
        NormalizedText::new(text)
            .sentences()
            .map(<[String]>::to_vec)
            .collect()
    }

    #[test]
    fn lower_cases_and_breaks_on_punctuation() {
        assert_eq!(words("Hello,World (again)"), ["helo", "world", "again"]);
        assert_eq!(words("self-harm"), ["self", "harm"]);
        assert_eq!(words("SELF—HARM"), ["self", "harm"]);
    }

    #[test]
    fn expands_contractions() {
        let cases: &[(&str, &str)] = &[
            ("I can't", "i can not"),
            ("i cant", "i can not"),
            ("I cannot", "i can not"),
            ("I won't", "i will not"),
            ("wont", "will not"),
            ("I don't", "i do not"),
            ("dont", "do not"),
            ("didn't", "did not"),
            ("shouldn't've", "should not have"),
            ("I'm", "i am"),
            ("im", "i am"),
            ("it's", "it is"),
            ("they're", "they are"),
            ("we've", "we have"),
            ("you'll", "you will"),
            ("I'd", "i would"),
            ("ain't", "is not"),
            ("wanna", "want to"),
            ("gonna", "going to"),
            ("mom's car", "mom car"),
            ("let's go", "let us go"),
            ("'quoted'", "quoted"),
        ];
        for (input, expected) in cases {
            assert_eq!(words(input), words(expected), "normalising {input:?}");
        }
        assert_eq!(words("I can't"), ["i", "can", "not"]);
    }

    #[test]
    fn folds_curly_apostrophes() {
        assert_eq!(words("I’m sure it‘s fine"), words("I'm sure it's fine"));
        assert_eq!(words("don\u{02BC}t"), ["do", "not"]);
    }

    #[test]
    fn collapses_repeated_letters() {
        assert_eq!(words("Sooooo"), ["so"]);
        assert_eq!(words("killll"), ["kil"]);
        assert_eq!(words("feel"), ["fel"]);
        assert_eq!(words("I'mmmm"), ["i", "am"]);
        assert_eq!(words("2000"), ["2000"], "digits are not letters");
    }

    #[test]
    fn merges_my_self() {
        assert_eq!(words("my self"), ["myself"]);
        assert_eq!(words("kill my self"), words("kill myself"));
        assert_eq!(words("my, self"), ["my", "self"]);
    }

    #[test]
    fn folds_accents_and_drops_invisible_marks() {
        assert_eq!(words("café"), ["cafe"]);
        assert_eq!(words("cafe\u{0301}"), ["cafe"]);
        assert_eq!(words("sui\u{200B}cide"), ["suicide"]);
        assert_eq!(words("İ"), ["i"]);
    }

    #[test]
    fn expansion_words_are_already_normalised() {
        let tokens = [
            "cant", "wont", "dont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent",
            "havent", "hasnt", "hadnt", "couldnt", "wouldnt", "shouldnt", "mustnt", "aint", "im",
            "ive", "youre", "theyre", "thats", "whats", "theres", "shes", "hes", "wouldve",
            "couldve", "shouldve", "wana", "gona", "gota", "hafta", "tryna", "leme",
        ];
        for token in tokens {
            let expansion = plain_contraction(token).unwrap_or_default();
            assert!(!expansion.is_empty(), "{token} has an expansion");
            for word in expansion {
                assert_eq!(words(word), [*word], "expansion of {token}");
            }
        }
        for stem in ["can", "won", "shan", "ain"] {
            let word = negated_stem(stem);
            assert_eq!(words(word), [word], "stem of {stem}n't");
        }
        for word in ["not", "am", "are", "have", "wil", "would", "is", "us"] {
            assert_eq!(words(word), [word]);
        }
    }

    #[test]
    fn splits_sentences() {
        assert_eq!(
            sentences("I am tired. It is late! Why me? Bed time; now then\nok then"),
            [
                vec!["i", "am", "tired"],
                vec!["it", "is", "late"],
                vec!["why", "me"],
                vec!["bed", "time"],
                vec!["now", "then"],
                vec!["ok", "then"],
            ]
        );
    }

    #[test]
    fn joins_one_word_sentences() {
        assert_eq!(
            sentences("I. Want. To. Die."),
            [vec!["i", "want", "to", "die"]]
        );
        assert_eq!(
            sentences("I am fine. Really."),
            [vec!["i", "am", "fine"], vec!["realy"]]
        );
    }

    #[test]
    fn ellipsis_does_not_end_a_sentence() {
        let text = NormalizedText::new("I want to... die");
        assert!(text.has_phrase("want to die"));
        let text = NormalizedText::new("I want to… die");
        assert!(text.has_phrase("want to die"));
    }

    #[test]
    fn has_phrase_matches_whole_words_within_a_sentence() {
        let text = NormalizedText::new("I really don’t want to go. Skiing is fun");
        assert!(text.has_phrase("don't want to go"));
        assert!(text.has_phrase("DO NOT WANT"));
        assert!(!text.has_phrase("go skiing"), "crosses a sentence end");
        assert!(!text.has_phrase("ant to"), "part of a word");
        assert!(!text.has_phrase(""));
        assert!(!text.has_phrase("..."));
        assert!(text.has_any(&["nope", "skiing is"]));
        assert!(!text.has_any(&[]));
        assert!(NormalizedText::new("Sooo stressed").has_phrase("so stressed"));
    }

    #[test]
    fn marks_clause_breaks() {
        let text = NormalizedText::new("go on, it - is 😭 fine");
        assert_eq!(text.words(), ["go", "on", "it", "is", "fine"]);
        assert_eq!(text.breaks(), [false, false, true, true, true]);
        let ranges: Vec<Range<usize>> = text.sentence_ranges().collect();
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges.first(), Some(&(0..5)));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let inputs = [
            String::new(),
            "'''''".to_owned(),
            "...".repeat(1500),
            "n't ".repeat(1000),
            "a".repeat(4000),
            "Z\u{0351}\u{0358}a\u{0323}\u{0330}l\u{0354}g\u{0349}o".repeat(300),
            "😭🔥👍🏽👨‍👩‍👧".repeat(500),
            "مرحبا שלום 你好 Привет ǅ ß ﬁ".repeat(100),
            "\u{0}\u{1}\u{FFFF}\u{10FFFF}\r\n\t".repeat(500),
            "'s'd'll're've'm't".repeat(200),
        ];
        for input in &inputs {
            let text = NormalizedText::new(input);
            let _ = text.has_phrase("a b");
            assert_eq!(text.words().len(), text.break_before.len());
        }
        assert!(NormalizedText::new("").sentences().next().is_none());
    }
}
