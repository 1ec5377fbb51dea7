//! Undoing the disguises people put on words before a text is read, so
//! that crisis detection sees "kill" in `k1ll`, `ｋｉｌｌ`, `kіll` (with a
//! Cyrillic і) and `k i l l`:
//! - Unicode compatibility forms folded (NFKC: fullwidth, ligatures, circled
//!   and styled letters become plain ones);
//! - look-alike letters from other scripts (Cyrillic, Greek) read as the
//!   Latin letter they imitate, inside a word that also has Latin letters;
//! - leetspeak digits and symbols (`0 1 3 4 5 7 @ $`) read as letters inside
//!   a word that also has letters (`su1c1de`, `d13`); a number stays a number;
//! - a word spelt out in single letters (`d i e`, `k-i-l-l`, `d.i.e`, three
//!   letters or more) joined back into one.
//!
//! Written here rather than taken from a crate: the look-alike and leet
//! tables are Hearth's own choices (only the letters that disguise English
//! and Spanish words, only inside words), and a general confusables table
//! would fold far more than detection wants. NFKC itself comes from
//! `unicode-normalization`.
//!
//! Most messages are plain ASCII with no digits inside words and no spelt
//! out words: they are returned as they are, borrowed, after one scan.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// The text with its disguises undone; borrowed when there were none.
pub fn unmask(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && plainly_ascii(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let folded = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(fold_letters(text))
    };
    let leet = match read_leet(&folded) {
        Cow::Owned(read) => Some(read),
        Cow::Borrowed(_) => None,
    };
    let read = leet.map_or(folded, Cow::Owned);
    let runs = spelt_out_runs(&read);
    if runs.is_empty() {
        return read;
    }
    Cow::Owned(join_spelt_out_words(&read, &runs))
}

/// The common case, told by one pass over the bytes: no leet character
/// anywhere, and fewer than three letters standing alone, so no word can be
/// spelt out.
fn plainly_ascii(bytes: &[u8]) -> bool {
    if bytes
        .iter()
        .any(|b| matches!(b, b'0' | b'1' | b'3' | b'4' | b'5' | b'7' | b'@' | b'$'))
    {
        return false;
    }
    let alone = |at: usize| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        let after = bytes.get(at + 1);
        !before.is_some_and(u8::is_ascii_alphanumeric)
            && !after.is_some_and(u8::is_ascii_alphanumeric)
    };
    let lone_letters = (0..bytes.len())
        .filter(|&at| bytes[at].is_ascii_alphabetic() && alone(at))
        .count();
    lone_letters < 3
}

/// NFKC, then look-alike letters inside words that also hold Latin ones,
/// or anywhere in a message written mostly in Latin letters (a lone
/// Cyrillic `і` for "I"); a message in another script keeps its letters.
fn fold_letters(text: &str) -> String {
    let normal: String = text.nfkc().map(emoji_word).collect::<Vec<_>>().concat();
    let latin = normal.chars().filter(char::is_ascii_alphabetic).count();
    let letters = normal.chars().filter(|c| c.is_alphabetic()).count();
    let mostly_latin = latin * 2 > letters;
    let mut out = String::with_capacity(normal.len());
    for (is_word, piece) in pieces(&normal) {
        let mixed = is_word
            && (mostly_latin || piece.chars().any(|c| c.is_ascii_alphabetic()))
            && piece.chars().any(|c| lookalike(c).is_some());
        if mixed {
            out.extend(piece.chars().map(|c| lookalike(c).unwrap_or(c)));
        } else {
            out.push_str(piece);
        }
    }
    out
}

/// The few emoji that stand for a means of harm, read as their word.
fn emoji_word(c: char) -> String {
    match c {
        '\u{1F52B}' => " gun ".into(),
        '\u{1F48A}' => " pills ".into(),
        '\u{1FA78}' => " blood ".into(),
        other => other.to_string(),
    }
}

/// The Latin letter a Cyrillic or Greek letter is used to imitate.
fn lookalike(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'а' => 'a',
        'е' | 'ё' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ӏ' => 'l',
        'к' => 'k',
        'м' => 'm',
        'т' => 't',
        'н' => 'h',
        'в' => 'b',
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'Х' => 'X',
        'У' => 'Y',
        'І' => 'I',
        'Ј' => 'J',
        'Ѕ' => 'S',
        // Greek
        'α' => 'a',
        'ε' => 'e',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        'Ζ' => 'Z',
        _ => return None,
    })
}

/// The letter a leetspeak character stands for, inside a word.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

/// A character that may be part of a disguised word.
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// The text cut into alternating runs: words (letters, digits, `@`, `$`)
/// and what lies between them.
fn pieces(text: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let is_word = in_word(first);
        let end = rest
            .char_indices()
            .find(|(_, c)| in_word(*c) != is_word)
            .map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some((is_word, piece))
    })
}

/// A word written in leetspeak: a leet character between two letters
/// (`k1ll`, `h@rm`), a word of letters ending in leet digits only (`d13`),
/// or a leading `$`/`@` before letters (`$elf`). A number with a unit
/// (`5pm`, `3rd`) or a name with a number (`b12`, `covid19`) is not one.
fn is_leet_word(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    let letter = |c: &char| c.is_alphabetic();
    if !chars.iter().any(letter) || !chars.iter().any(|c| leet(*c).is_some()) {
        return false;
    }
    let between_letters = chars
        .windows(3)
        .any(|w| letter(&w[0]) && leet(w[1]).is_some() && (letter(&w[2]) || leet(w[2]).is_some()));
    let letters_then_leet = letter(&chars[0]) && {
        let tail: Vec<&char> = chars.iter().skip_while(|c| letter(c)).collect();
        !tail.is_empty() && tail.iter().all(|c| leet(**c).is_some())
    };
    let leading_symbol =
        matches!(chars[0], '$' | '@') && chars.get(1).is_some_and(|c| c.is_alphabetic());
    // `1t`, `0n`: a short word led by a leet digit, but not `1st` or `5pm`.
    let led_by_digit = chars.len() <= 3
        && leet(chars[0]).is_some()
        && chars[1..].iter().all(|c| c.is_alphabetic())
        && !matches!(
            word[1..].to_ascii_lowercase().as_str(),
            "st" | "nd"
                | "rd"
                | "th"
                | "am"
                | "pm"
                | "k"
                | "m"
                | "h"
                | "s"
                | "x"
                | "mg"
                | "kg"
                | "km"
                | "ml"
                | "d"
                | "g"
                | "l"
        );
    between_letters || letters_then_leet || leading_symbol || led_by_digit
}

fn has_leet(text: &str) -> bool {
    pieces(text).any(|(is_word, piece)| is_word && is_leet_word(piece))
}

fn read_leet(text: &str) -> Cow<'_, str> {
    if !has_leet(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for (is_word, piece) in pieces(text) {
        if is_word && is_leet_word(piece) {
            out.extend(piece.chars().map(|c| leet(c).unwrap_or(c)));
        } else {
            out.push_str(piece);
        }
    }
    Cow::Owned(out)
}

/// What may stand between the letters of a spelt-out word: spaces and one
/// light mark (`d i e`, `d-i-e`, `d.i.e`, `d * i * e`).
fn joins_letters(between: &str) -> bool {
    let marks = between.chars().filter(|c| !c.is_whitespace()).count();
    !between.is_empty()
        && between.len() <= 4
        && marks <= 1
        && between
            .chars()
            .all(|c| c.is_whitespace() || matches!(c, '-' | '.' | '_' | '*' | '·' | '•' | '/'))
}

/// A piece that is one letter, or one leet character standing for one.
fn single_letter(piece: &str) -> Option<char> {
    let mut chars = piece.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_alphabetic() => Some(c),
        (Some(c), None) => leet(c),
        _ => None,
    }
}

/// Where spelt-out words start and how many pieces they span.
fn spelt_out_runs(text: &str) -> Vec<(usize, usize)> {
    let pieces: Vec<(bool, &str)> = pieces(text).collect();
    let mut runs = Vec::new();
    let mut at = 0;
    while at < pieces.len() {
        let (is_word, piece) = pieces[at];
        if !is_word || single_letter(piece).is_none() {
            at += 1;
            continue;
        }
        let mut letters = 1;
        let mut real_letters = usize::from(piece.chars().all(char::is_alphabetic));
        let mut end = at + 1;
        // One word is spelt with one joiner throughout: "k-i-l-l m-y-s-e-l-f"
        // is two words, and so is "b y e  f o r e v e r".
        let joiner = pieces.get(end).map(|(_, between)| *between);
        while end + 1 < pieces.len()
            && joins_letters(pieces[end].1)
            && Some(pieces[end].1) == joiner
            && pieces[end + 1].0
            && single_letter(pieces[end + 1].1).is_some()
        {
            letters += 1;
            real_letters += usize::from(pieces[end + 1].1.chars().all(char::is_alphabetic));
            end += 2;
        }
        // "i" and "a" are words of their own: "i c u t" is "i cut".
        let mut start = at;
        if letters >= 4 && matches!(piece, "i" | "a" | "I" | "A") {
            start += 2;
            letters -= 1;
        }
        // A row of digits is a number ("1 1 1"), not a word.
        if letters >= 3 && real_letters > 0 {
            runs.push((start, end));
            at = end;
        } else {
            // Too short with this joiner; a run may start at its last letter.
            at += 1;
        }
    }
    runs
}

fn join_spelt_out_words(text: &str, runs: &[(usize, usize)]) -> String {
    let pieces: Vec<(bool, &str)> = pieces(text).collect();
    let mut out = String::with_capacity(text.len());
    let mut runs = runs.iter().copied().peekable();
    let mut at = 0;
    while at < pieces.len() {
        match runs.peek() {
            Some(&(start, end)) if start == at => {
                for (is_word, piece) in &pieces[start..end] {
                    if let (true, Some(letter)) = (*is_word, single_letter(piece)) {
                        out.push(letter);
                    }
                }
                runs.next();
                at = end;
            }
            _ => {
                out.push_str(pieces[at].1);
                at += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for text in [
            "I feel a bit low today, call me at 5pm.",
            "room 101 and 988 are numbers",
            "a b",
        ] {
            assert!(matches!(unmask(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn compatibility_forms_and_lookalikes_become_latin() {
        assert_eq!(unmask("ｋｉｌｌ ｍｙｓｅｌｆ"), "kill myself");
        // Cyrillic і and е inside Latin words.
        assert_eq!(unmask("k\u{0456}ll mys\u{0435}lf"), "kill myself");
        // Greek ο inside a Latin word.
        assert_eq!(unmask("d\u{03BF}ne"), "done");
        // A word wholly in another script is left alone; in a message
        // written in Latin letters, a lone look-alike is read as Latin.
        assert_eq!(unmask("привет"), "привет");
        assert_eq!(unmask("\u{0456} wish \u{0456} was"), "i wish i was");
        assert_eq!(unmask("ﬁne"), "fine");
    }

    #[test]
    fn leetspeak_inside_words_is_read_as_letters() {
        assert_eq!(unmask("i want to k1ll mys3lf"), "i want to kill myself");
        assert_eq!(unmask("su1c1de"), "suicide");
        assert_eq!(unmask("d13"), "die");
        assert_eq!(unmask("g0nna d0 1t"), "gonna do it");
        assert_eq!(unmask("$elf h@rm"), "self harm");
        // Numbers, times and names with numbers stay as they are.
        assert_eq!(unmask("call 988 at 10 pm, k1ll"), "call 988 at 10 pm, kill");
        for plain in ["5pm", "3rd", "1st", "b12", "covid19", "24h", "4ever"] {
            assert_eq!(unmask(plain), plain);
        }
    }

    #[test]
    fn spelt_out_words_are_joined() {
        assert_eq!(unmask("i want to d i e"), "i want to die");
        assert_eq!(unmask("k-i-l-l myself"), "kill myself");
        assert_eq!(unmask("d.i.e"), "die");
        assert_eq!(unmask("i want to d * i * e now"), "i want to die now");
        // Two letters are not a word spelt out.
        assert_eq!(unmask("a b testing"), "a b testing");
        assert_eq!(unmask("k 1 l l"), "kill");
        assert_eq!(unmask("i c u t myself"), "i cut myself");
        assert_eq!(unmask("k-i-l-l m-y-s-e-l-f"), "kill myself");
        assert_eq!(unmask("b y e  f o r e v e r"), "bye  forever");
        assert_eq!(unmask("wrote a n.o.t.e"), "wrote a note");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            " ",
            "-.-.-",
            "a",
            "a b c",
            "\u{0301}\u{0301}",
            "𝓴𝓲𝓵𝓵",
            "1 1 1 1",
            "@@@ $$$",
        ] {
            let _ = unmask(text);
        }
        assert_eq!(unmask("𝓴𝓲𝓵𝓵"), "kill");
    }
}
