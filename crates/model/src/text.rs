//! Checks on free-text names people read in portals, lists and logs.
//!
//! A name may hold any script, but not the characters that make it display as something it
//! is not: control characters, the bidirectional embeddings, overrides and isolates (the
//! "Trojan Source" trick, CVE-2021-42574, which lets `Payments\u{202E}lanretni` read as another
//! name) and the invisible zero-width characters that let two names look the same.

/// The first character of `s` that a displayed name must not hold, if any: a control
/// character, a bidirectional formatting character or an invisible one.
pub fn hidden_or_reordering_char(s: &str) -> Option<char> {
    s.chars().find(|c| is_hidden_or_reordering(*c))
}

/// Whether `c` is a control character, a bidirectional formatting character or an
/// invisible (zero-width) character.
pub fn is_hidden_or_reordering(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates (Unicode UAX #9).
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero-width space, non-joiner, joiner; word joiner and the invisible operators;
            // the byte-order mark used as a zero-width no-break space; Mongolian vowel
            // separator; soft hyphen; Hangul fillers; interlinear annotations.
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{180E}'
            | '\u{00AD}'
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// The message a validator gives for such a character, naming it by code point so that an
/// invisible one can be found.
pub fn hidden_char_message(c: char) -> String {
    format!(
        "must not contain control, bidirectional-formatting or invisible characters (found U+{:04X})",
        u32::from(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_script_pass() {
        for name in [
            "Pizza Shack",
            "Café crème",
            "注文API",
            "Заказы",
            "طلبات",
            "ordre-v2_beta.1",
        ] {
            assert_eq!(hidden_or_reordering_char(name), None, "{name}");
        }
    }

    #[test]
    fn reordering_invisible_and_control_characters_are_found() {
        for (name, c) in [
            ("Payments\u{202E}lanretni", '\u{202E}'),
            ("a\u{2066}b", '\u{2066}'),
            ("adm\u{200B}in", '\u{200B}'),
            ("\u{FEFF}orders", '\u{FEFF}'),
            ("x\u{200D}y", '\u{200D}'),
            ("line\nbreak", '\n'),
            ("tab\there", '\t'),
            ("del\u{7F}", '\u{7F}'),
            ("soft\u{AD}hyphen", '\u{AD}'),
        ] {
            assert_eq!(hidden_or_reordering_char(name), Some(c), "{name:?}");
        }
        assert!(hidden_char_message('\u{202E}').contains("U+202E"));
    }
}
