//! Which language a message is written in, as far as the help it gets
//! depends on it: Spanish or not. A count of function words, which every
//! sentence has whatever it is about; enough to put Spanish-speaking
//! crisis lines first, not a general language identifier.

use crate::therapy::text::NormalizedText;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    English,
    Spanish,
}

impl Language {
    /// The code resources name their languages by.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Spanish => "es",
        }
    }
}

/// Spanish words that are not English ones, in normalised form (accents
/// folded, doubled letters collapsed: "llamar" is "lamar").
const SPANISH: &[&str] = &[
    "que", "de", "el", "la", "los", "las", "y", "es", "un", "una", "por", "para", "con", "pero",
    "muy", "ya", "mas", "todo", "nada", "yo", "mi", "me", "te", "se", "lo", "le", "esto", "esta",
    "estoy", "eso", "tengo", "quiero", "puedo", "siento", "porque", "como", "cuando", "nunca",
    "vida", "morir", "vivir", "nadie", "todos", "ojala", "ayuda", "hoy", "solo", "sola", "aqui",
    "tambien", "sin", "del", "al", "mis", "tu", "soy", "hay", "estar", "ser", "ni", "si",
];

/// English function words that do not spell a Spanish one.
const ENGLISH: &[&str] = &[
    "the", "i", "and", "to", "you", "is", "my", "it", "of", "not", "am", "want", "this", "that",
    "with", "for", "have", "just", "what", "are", "was", "be", "so", "do", "can", "feel", "like",
    "me", "myself", "anymore", "will", "would",
];

/// Spanish when at least two different Spanish function words outnumber
/// the English ones ("la la land" is one word twice).
pub fn detect_language(text: &NormalizedText) -> Language {
    let mut seen_spanish: Vec<&str> = Vec::new();
    let (mut spanish, mut english) = (0usize, 0usize);
    for word in text.words() {
        let word = word.as_str();
        if SPANISH.contains(&word) {
            spanish += 1;
            if !seen_spanish.contains(&word) {
                seen_spanish.push(word);
            }
        }
        if ENGLISH.contains(&word) {
            english += 1;
        }
    }
    if seen_spanish.len() >= 2 && spanish > english {
        Language::Spanish
    } else {
        Language::English
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn language(text: &str) -> Language {
        detect_language(&NormalizedText::new(text))
    }

    #[test]
    fn spanish_is_told_from_english() {
        for spanish in [
            "ya no quiero vivir",
            "me quiero morir, nadie me entiende",
            "Estoy muy cansada de todo",
            "no le veo salida a esto",
        ] {
            assert_eq!(language(spanish), Language::Spanish, "{spanish}");
        }
        for english in [
            "I want to die",
            "I feel like nobody cares about me",
            "me and my friends went out",
            "la la land is a good film",
            "",
        ] {
            assert_eq!(language(english), Language::English, "{english}");
        }
    }
}
