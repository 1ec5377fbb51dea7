//! The pattern language crisis rules are written in, and the matcher that
//! runs a compiled set of rules over a normalised message.
//!
//! A rule fires when its pattern occurs within one sentence of the message
//! and none of its "unless" patterns occurs in that same sentence. A
//! [`RuleSet`] is compiled once: pattern words are interned so matching
//! compares integers, and each rule is indexed by an anchor word so that most
//! rules are skipped for a given message without running the matcher.
//!
//! # Pattern syntax
//! A pattern is a sequence of space-separated elements, written in plain
//! English and normalised like the message at match time:
//! - `word` — one word; contractions may expand to several (`can't` is
//!   "can not"), and stretched letters collapse on both sides.
//! - `a|b|c` — alternatives for one position.
//! - `a_b` — several consecutive words inside one alternative
//!   (`deal_with|handle`).
//! - `word?` — the element is optional (`my own? life`).
//! - `*` — zero to two arbitrary words.
//! - `**` — zero to eight arbitrary words: two ideas anywhere in one clause
//!   of a sentence ("thinking about the bridge by my school again").
//! - `$` — the end of the sentence or a clause break (comma, dash, emoji,
//!   ellipsis ...): `can't go on $` matches "I can't go on, it hurts" but not
//!   "I can't go on the trip". It may also be one alternative: `end it $|tonight`.
//! - `~word` — a keyword of 6+ letters that also matches with one typo
//!   (one letter inserted, deleted, replaced, or two neighbours swapped):
//!   `~suicide` matches "sucide" and "suicdie". Used only for words whose
//!   one-typo neighbours are not other English words.

use std::collections::HashMap;

use crate::therapy::text::NormalizedText;

/// Most words one `*` skips: wider gaps would let unrelated clauses of a
/// long sentence complete a phrase.
const MAX_GAP: usize = 2;
/// Most words one `**` skips; it never skips over a clause break.
const MAX_WIDE_GAP: usize = 8;
/// Shortest `~` keyword given typo tolerance: shorter words have too many
/// real words one typo away.
const MIN_FUZZY_LEN: usize = 6;

/// Id of a text word that no pattern of the rule set uses.
const UNKNOWN_WORD: u32 = u32::MAX;

/// Pattern words interned as integers, so matching compares ids rather than
/// strings; a text is mapped to ids once per call.
#[derive(Default)]
struct Vocabulary {
    /// foldhash: every word of every message is looked up here, and SipHash
    /// was most of the lookup's cost; the seed is still random per process.
    ids: HashMap<String, u32, foldhash::fast::RandomState>,
    /// Indexed by id.
    lengths: Vec<usize>,
}

impl Vocabulary {
    fn intern(&mut self, word: String) -> u32 {
        if let Some(&id) = self.ids.get(&word) {
            return id;
        }
        let id = u32::try_from(self.lengths.len()).unwrap_or(UNKNOWN_WORD - 1);
        self.lengths.push(word.len());
        self.ids.insert(word, id);
        id
    }

    fn len_of(&self, id: u32) -> usize {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.lengths.get(index))
            .copied()
            .unwrap_or(0)
    }

    fn id(&self, word: &str) -> u32 {
        self.ids.get(word).copied().unwrap_or(UNKNOWN_WORD)
    }
}

/// One sentence of the text under test.
struct Sentence<'a> {
    ids: &'a [u32],
    words: &'a [String],
    breaks: &'a [bool],
}

#[derive(Debug)]
enum Alternative {
    Word(u32),
    /// Two or more consecutive words.
    Phrase(Vec<u32>),
    /// A keyword of at least [`MIN_FUZZY_LEN`] letters, matched with one typo allowed.
    Fuzzy(String),
    /// `$`: matches no word, only at the end of a sentence or clause.
    ClauseEnd,
}

impl Alternative {
    fn parse(source: &str, vocabulary: &mut Vocabulary) -> Option<Alternative> {
        if source == "$" {
            return Some(Alternative::ClauseEnd);
        }
        let (source, fuzzy) = match source.strip_prefix('~') {
            Some(rest) => (rest, true),
            None => (source, false),
        };
        let mut words = NormalizedText::new(source).into_words();
        match words.as_slice() {
            [] => None,
            [word] if fuzzy && word.chars().count() >= MIN_FUZZY_LEN => {
                words.pop().map(Alternative::Fuzzy)
            }
            [_] => words
                .pop()
                .map(|word| Alternative::Word(vocabulary.intern(word))),
            _ => Some(Alternative::Phrase(
                words
                    .into_iter()
                    .map(|word| vocabulary.intern(word))
                    .collect(),
            )),
        }
    }

    /// How many words this alternative covers when it matches at `pos`.
    fn match_len(&self, sentence: &Sentence<'_>, pos: usize) -> Option<usize> {
        match self {
            Alternative::Word(expected) => (sentence.ids.get(pos) == Some(expected)).then_some(1),
            Alternative::Phrase(expected) => {
                let tail = sentence.ids.get(pos..)?;
                (tail.len() >= expected.len() && tail.iter().zip(expected).all(|(a, b)| a == b))
                    .then_some(expected.len())
            }
            Alternative::Fuzzy(keyword) => sentence
                .words
                .get(pos)
                .filter(|word| within_one_edit(keyword.as_bytes(), word.as_bytes()))
                .map(|_| 1),
            Alternative::ClauseEnd => {
                (pos == sentence.ids.len() || sentence.breaks.get(pos) == Some(&true)).then_some(0)
            }
        }
    }

    /// The id this alternative must start with, when it is an exact one.
    fn exact_first_id(&self) -> Option<u32> {
        match self {
            Alternative::Word(id) => Some(*id),
            Alternative::Phrase(ids) => ids.first().copied(),
            Alternative::Fuzzy(_) | Alternative::ClauseEnd => None,
        }
    }
}

#[derive(Debug)]
enum Element {
    Word {
        alternatives: Vec<Alternative>,
        optional: bool,
    },
    Gap,
    WideGap,
}

#[derive(Debug)]
struct Pattern {
    elements: Vec<Element>,
    /// Bitset over word ids that can begin a match; None when a match may
    /// start anywhere (a leading gap, typo-tolerant word or `$`). Lets the
    /// matcher skip most start positions with one bit test.
    starts: Option<Vec<u64>>,
}

impl Pattern {
    fn parse(source: &str, vocabulary: &mut Vocabulary) -> Pattern {
        let mut elements = Vec::new();
        for token in source.split_whitespace() {
            if token == "*" {
                elements.push(Element::Gap);
                continue;
            }
            if token == "**" {
                elements.push(Element::WideGap);
                continue;
            }
            let (body, optional) = match token.strip_suffix('?') {
                Some(body) => (body, true),
                None => (token, false),
            };
            let alternatives: Vec<Alternative> = body
                .split('|')
                .filter_map(|alternative| Alternative::parse(alternative, vocabulary))
                .collect();
            if !alternatives.is_empty() {
                elements.push(Element::Word {
                    alternatives,
                    optional,
                });
            }
        }
        let starts = start_ids(&elements);
        Pattern { elements, starts }
    }

    fn is_in(&self, sentence: &Sentence<'_>) -> bool {
        sentence
            .ids
            .iter()
            .enumerate()
            .any(|(start, &id)| self.may_start_with(id) && self.matches_from(0, sentence, start))
    }

    fn may_start_with(&self, id: u32) -> bool {
        let Some(starts) = &self.starts else {
            return true;
        };
        usize::try_from(id / 64)
            .ok()
            .and_then(|block| starts.get(block))
            .is_some_and(|bits| bits & (1 << (id % 64)) != 0)
    }

    fn matches_from(&self, element: usize, sentence: &Sentence<'_>, pos: usize) -> bool {
        let Some(current) = self.elements.get(element) else {
            return true;
        };
        let next = element + 1;
        match current {
            Element::Gap => (0..=MAX_GAP)
                .take_while(|skip| pos + skip <= sentence.ids.len())
                .any(|skip| self.matches_from(next, sentence, pos + skip)),
            Element::WideGap => (0..=MAX_WIDE_GAP)
                // Words are skipped only within the clause `pos` is in.
                .take_while(|&skip| {
                    let at = pos + skip;
                    at <= sentence.ids.len()
                        && (skip == 0 || sentence.breaks.get(at) != Some(&true))
                })
                .any(|skip| self.matches_from(next, sentence, pos + skip)),
            Element::Word {
                alternatives,
                optional,
            } => {
                alternatives.iter().any(|alternative| {
                    alternative
                        .match_len(sentence, pos)
                        .is_some_and(|len| self.matches_from(next, sentence, pos + len))
                }) || (*optional && self.matches_from(next, sentence, pos))
            }
        }
    }

    /// For each required element made of exact words only, the ids its
    /// alternatives begin with: a text lacking all of one element's ids
    /// cannot hold a match.
    fn required(&self) -> Vec<Vec<u32>> {
        self.elements
            .iter()
            .filter_map(|element| match element {
                Element::Word {
                    alternatives,
                    optional: false,
                } => alternatives
                    .iter()
                    .map(Alternative::exact_first_id)
                    .collect::<Option<Vec<u32>>>(),
                _ => None,
            })
            .collect()
    }

    /// First-word ids of one required element: a rule can only match a text
    /// containing one of them, which lets most rules be skipped without
    /// running the matcher. Of the candidates, the element whose shortest
    /// word is longest, as a proxy for rarest. None when no required element
    /// consists of exact words only.
    fn anchor(&self, vocabulary: &Vocabulary) -> Option<Vec<u32>> {
        self.required()
            .into_iter()
            .max_by_key(|first_ids| first_ids.iter().map(|&id| vocabulary.len_of(id)).min())
    }
}

/// The ids a match of `elements` can begin with, as a bitset; None when any
/// word can begin one.
fn start_ids(elements: &[Element]) -> Option<Vec<u64>> {
    let mut bits: Vec<u64> = Vec::new();
    for element in elements {
        let Element::Word {
            alternatives,
            optional,
        } = element
        else {
            return None;
        };
        for alternative in alternatives {
            let id = usize::try_from(alternative.exact_first_id()?).ok()?;
            let block = id / 64;
            if bits.len() <= block {
                bits.resize(block + 1, 0);
            }
            if let Some(word) = bits.get_mut(block) {
                *word |= 1 << (id % 64);
            }
        }
        if !optional {
            return Some(bits);
        }
    }
    // Every element optional: the pattern can match nothing.
    None
}

/// Optimal-string-alignment distance of at most one, on bytes: patterns are
/// ASCII, so a non-ASCII letter in the text never counts as a single typo.
fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let common = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    let (short, long) = (&short[common..], &long[common..]);
    match (short, long) {
        ([], _) => true,
        ([s0, s_rest @ ..], [l0, l_rest @ ..]) if short.len() == long.len() => {
            s_rest == l_rest
                || matches!((s_rest, l_rest), ([s1, s_tail @ ..], [l1, l_tail @ ..])
                    if s0 == l1 && s1 == l0 && s_tail == l_tail)
        }
        (_, [_, l_rest @ ..]) => short == l_rest,
        _ => false,
    }
}

struct Rule<K> {
    /// Its place in the set.
    order: usize,
    kind: K,
    pattern: Pattern,
    unless: Vec<Pattern>,
    /// [`Pattern::required`] of the pattern.
    required: Vec<Vec<u32>>,
}

impl<K> Rule<K> {
    /// Whether every required element has a word in the text: the anchor
    /// says one of them does; this checks the others as well, so that a
    /// rule whose anchor word is common ("i", "want") is matched only when
    /// its other words are there too.
    fn may_match(&self, present: &WordSet) -> bool {
        self.required
            .iter()
            .all(|ids| ids.iter().any(|&id| present.contains(id)))
    }
}

/// The ids of a text's words, as a bitset over the vocabulary.
struct WordSet(Vec<u64>);

impl WordSet {
    fn of(ids: &[u32], vocabulary_len: usize) -> WordSet {
        let mut bits = vec![0u64; vocabulary_len.div_ceil(64)];
        for &id in ids {
            if let Some(block) = usize::try_from(id / 64).ok().and_then(|b| bits.get_mut(b)) {
                *block |= 1 << (id % 64);
            }
        }
        WordSet(bits)
    }

    fn contains(&self, id: u32) -> bool {
        usize::try_from(id / 64)
            .ok()
            .and_then(|block| self.0.get(block))
            .is_some_and(|bits| bits & (1 << (id % 64)) != 0)
    }
}

/// Rules compiled once and matched against many messages; `K` is what a
/// firing rule reports (a crisis type, or nothing for anxiety cues).
pub(super) struct RuleSet<K> {
    rules: Vec<Rule<K>>,
    /// Benign frames (a denial, a past that is over, news, a story): a
    /// sentence holding one is read clause by clause, and a clause holding
    /// one yields nothing. See [`RuleSet::with_context`].
    context: Vec<Pattern>,
    vocabulary: Vocabulary,
    /// Indexed by word id: the rules anchored on that word.
    rules_by_anchor: Vec<Vec<usize>>,
    unanchored: Vec<usize>,
}

impl<K: Copy + PartialEq> RuleSet<K> {
    /// Compiles `(kind, pattern, unless patterns)` rules. Taking plain
    /// strings keeps the matcher independent of how the tables are written.
    pub(super) fn new<'a>(rules: impl IntoIterator<Item = (K, &'a str, &'a [&'a str])>) -> Self {
        let mut vocabulary = Vocabulary::default();
        let rules: Vec<Rule<K>> = rules
            .into_iter()
            .enumerate()
            .map(|(order, (kind, pattern, unless))| {
                let pattern = Pattern::parse(pattern, &mut vocabulary);
                Rule {
                    order,
                    kind,
                    required: pattern.required(),
                    pattern,
                    unless: unless
                        .iter()
                        .map(|source| Pattern::parse(source, &mut vocabulary))
                        .collect(),
                }
            })
            .collect();
        let mut rules_by_anchor = vec![Vec::new(); vocabulary.lengths.len()];
        let mut unanchored = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            match rule.pattern.anchor(&vocabulary) {
                Some(ids) => {
                    for id in ids {
                        if let Some(anchored) = usize::try_from(id)
                            .ok()
                            .and_then(|id| rules_by_anchor.get_mut(id))
                        {
                            if anchored.last() != Some(&index) {
                                anchored.push(index);
                            }
                        }
                    }
                }
                None => unanchored.push(index),
            }
        }
        RuleSet {
            rules,
            context: Vec::new(),
            vocabulary,
            rules_by_anchor,
            unanchored,
        }
    }

    /// Adds the benign frames: "I'm not suicidal", "I used to cut, now ...",
    /// "an article on suicide rates". Where one stands in a sentence, the
    /// sentence is cut into clauses (at commas, dashes and the like, and
    /// before "but" and "now"), and only clauses without a frame are read:
    /// "I used to be happy, now I want to die" still fires.
    pub(super) fn with_context(mut self, frames: &[&str]) -> Self {
        self.context = frames
            .iter()
            .map(|source| Pattern::parse(source, &mut self.vocabulary))
            .collect();
        self
    }

    /// The clauses of a sentence that holds a benign frame, less those
    /// that hold one themselves.
    fn clauses_without_frames<'a>(&self, sentence: &Sentence<'a>) -> Vec<Sentence<'a>> {
        let mut clauses = Vec::new();
        let mut start = 0;
        let len = sentence.words.len();
        for at in 1..=len {
            let cut = at == len
                || sentence.breaks.get(at).copied().unwrap_or(false)
                || matches!(
                    sentence.words.get(at).map(String::as_str),
                    Some("but" | "now" | "however" | "today" | "tonight")
                );
            if !cut {
                continue;
            }
            let clause = Sentence {
                ids: sentence.ids.get(start..at).unwrap_or(&[]),
                words: sentence.words.get(start..at).unwrap_or(&[]),
                breaks: sentence.breaks.get(start..at).unwrap_or(&[]),
            };
            if !self.context.iter().any(|frame| frame.is_in(&clause)) {
                clauses.push(clause);
            }
            start = at;
        }
        clauses
    }

    /// The kinds of the rules that match, each once, in rule order.
    pub(super) fn find(&self, text: &NormalizedText) -> Vec<K> {
        let ids: Vec<u32> = text
            .words()
            .iter()
            .map(|word| self.vocabulary.id(word))
            .collect();
        let present = WordSet::of(&ids, self.vocabulary.lengths.len());
        // The candidates as a list in rule order: walking every rule of the
        // set for each sentence to find the few candidates cost more than
        // matching them did.
        let mut candidates: Vec<&Rule<K>> = Vec::new();
        let mut consider = |index: usize| {
            if let Some(rule) = self
                .rules
                .get(index)
                .filter(|rule| rule.may_match(&present))
            {
                candidates.push(rule);
            }
        };
        for &index in &self.unanchored {
            consider(index);
        }
        for &id in &ids {
            let anchored = usize::try_from(id)
                .ok()
                .and_then(|id| self.rules_by_anchor.get(id));
            for &index in anchored.into_iter().flatten() {
                consider(index);
            }
        }
        let sentences: Vec<Sentence<'_>> = text
            .sentence_ranges()
            .map(|range| Sentence {
                ids: ids.get(range.clone()).unwrap_or(&[]),
                words: text.words().get(range.clone()).unwrap_or(&[]),
                breaks: text.breaks().get(range).unwrap_or(&[]),
            })
            .collect();
        // Rule order: the first rule of a kind to fire is the one reported.
        // A rule anchored on several words of the text is listed once.
        candidates.sort_unstable_by_key(|rule| rule.order);
        candidates.dedup_by_key(|rule| rule.order);
        let fires_in = |sentence: &Sentence<'_>, found: &mut Vec<K>| {
            for rule in &candidates {
                if !found.contains(&rule.kind)
                    && rule.pattern.is_in(sentence)
                    && !rule.unless.iter().any(|unless| unless.is_in(sentence))
                {
                    found.push(rule.kind);
                }
            }
        };
        let mut found = Vec::new();
        for sentence in sentences {
            let mut here = Vec::new();
            fires_in(&sentence, &mut here);
            if here.is_empty() {
                continue;
            }
            // Frames are looked for only where something fired: most
            // messages never pay for them.
            if self.context.iter().any(|frame| frame.is_in(&sentence)) {
                here.clear();
                for clause in self.clauses_without_frames(&sentence) {
                    fires_in(&clause, &mut here);
                }
            }
            for kind in here {
                if !found.contains(&kind) {
                    found.push(kind);
                }
            }
        }
        found
    }
}

/// What is wrong with `source` as a pattern; empty when nothing is.
/// [`Pattern::parse`] silently drops an element that parses to nothing, so
/// the rule tables are checked with this rather than trusted.
#[cfg(test)]
pub(super) fn pattern_problems(source: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let pattern = Pattern::parse(source, &mut Vocabulary::default());
    if pattern.elements.len() != source.split_whitespace().count() {
        problems.push("an element parses to nothing".to_owned());
    }
    if !matches!(pattern.elements.first(), Some(Element::Word { .. })) {
        problems.push("does not start with a word".to_owned());
    }
    if matches!(
        pattern.elements.last(),
        Some(Element::Gap | Element::WideGap)
    ) {
        problems.push("ends with a gap".to_owned());
    }
    for token in source
        .split_whitespace()
        .filter(|token| !matches!(*token, "*" | "**"))
    {
        for alternative in token.trim_end_matches('?').split('|') {
            match Alternative::parse(alternative, &mut Vocabulary::default()) {
                None => problems.push(format!("alternative {alternative:?} is empty")),
                Some(Alternative::Fuzzy(_)) => {}
                Some(_) if alternative.starts_with('~') => {
                    problems.push(format!("{alternative:?} is too short for typo tolerance"))
                }
                Some(_) => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a lone rule with this pattern and these unless patterns fires.
    fn fires(pattern: &str, unless: &[&str], text: &str) -> bool {
        !RuleSet::new([((), pattern, unless)])
            .find(&NormalizedText::new(text))
            .is_empty()
    }

    #[test]
    fn typo_tolerance_is_one_edit() {
        assert!(within_one_edit(b"suicide", b"suicide"));
        assert!(within_one_edit(b"suicide", b"sucide"));
        assert!(within_one_edit(b"suicide", b"suiccide"));
        assert!(within_one_edit(b"suicide", b"suicdie"));
        assert!(within_one_edit(b"suicide", b"suicida"));
        assert!(!within_one_edit(b"suicide", b"sucdie"));
        assert!(!within_one_edit(b"suicide", b"suicidal"));
        assert!(!within_one_edit(b"myself", b"himself"));
        assert!(!within_one_edit(b"a", b"abc"));
    }

    /// The examples the syntax documentation above gives.
    #[test]
    fn documented_syntax_holds() {
        assert!(fires("can't go on $", &[], "I can't go on, it hurts"));
        assert!(!fires("can't go on $", &[], "I can't go on the trip"));
        assert!(fires("end it $|tonight", &[], "I will end it tonight"));
        assert!(fires("end it $|tonight", &[], "I will end it."));
        assert!(fires("~suicide", &[], "sucide"));
        assert!(fires("~suicide", &[], "suicdie"));
        assert!(fires("my own? life", &[], "my life"));
        assert!(fires("my own? life", &[], "my own life"));
        assert!(fires(
            "can't deal_with|handle it",
            &[],
            "I can't deal with it"
        ));
        assert!(!fires("can't deal_with|handle it", &[], "I can't deal it"));
        assert!(fires("take * pills", &[], "take all the pills"));
        assert!(!fires("take * pills", &[], "take all of the pills"));
        assert!(fires(
            "thinking ** bridge",
            &[],
            "thinking about the tall old bridge by my school"
        ));
        assert!(!fires(
            "thinking ** bridge",
            &[],
            "thinking about dinner, the bridge is closed"
        ));
        assert!(!fires("want to die", &[], "I want to. Die Hard is on"));
        assert!(!fires("hurt myself", &["gym"], "I hurt myself at the gym"));
        assert!(fires(
            "hurt myself",
            &["gym"],
            "I hurt myself. Then the gym"
        ));
    }
}
