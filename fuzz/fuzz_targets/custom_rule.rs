//! The custom-rule language (`tollgate_model::custom_rule`): conditions and key templates
//! as the Admin API receives them. Parsing never panics; a parsed condition evaluates
//! without panicking; `=~` is a glob that agrees with a reference matcher; a policy read
//! from JSON validates without panicking.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate_model::custom_rule::{Condition, CustomPolicy, KeyTemplate, RequestAttributes};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    condition: &'a str,
    template: &'a str,
    text: &'a str,
    pattern: &'a str,
    request: Request<'a>,
    policy_json: &'a [u8],
}

#[derive(Arbitrary, Debug)]
struct Request<'a> {
    variable: &'a str,
    header: Option<&'a str>,
    query: Option<&'a str>,
    claim: Option<&'a str>,
}

impl RequestAttributes for Request<'_> {
    fn variable(&self, _: &str) -> &str {
        self.variable
    }
    fn header(&self, _: &str) -> Option<&str> {
        self.header
    }
    fn query(&self, _: &str) -> Option<&str> {
        self.query
    }
    fn claim(&self, _: &str) -> Option<&str> {
        self.claim
    }
}

/// The obvious glob: `*` matches any run of characters, everything else itself.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    // matched[j]: pattern[..i] matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for p in pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = if *p == '*' {
                matched[j] || (j > 0 && next[j - 1])
            } else {
                j > 0 && matched[j - 1] && text[j - 1] == *p
            };
        }
        matched = next;
    }
    matched[text.len()]
}

/// `text` as a single-quoted string of the language.
fn quoted(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fuzz_target!(|input: Input<'_>| {
    if let Ok(condition) = Condition::parse(input.condition) {
        let _ = condition.matches(&input.request);
        assert_eq!(
            Condition::parse(input.condition).ok(),
            Some(condition),
            "parsing is deterministic"
        );
    }
    if let Ok(template) = KeyTemplate::parse(input.template) {
        assert!(
            input.template.contains('$'),
            "a template without a variable was accepted"
        );
        let key = template.render(&input.request);
        assert!(key.len() <= input.template.len() + 11 * input.request.variable.len());
    }

    // Glob and equality, through the language itself.
    let (text, pattern) = (quoted(input.text), quoted(input.pattern));
    let glob = format!("{text} =~ {pattern}");
    if glob.len() <= 2000 {
        let parsed = Condition::parse(&glob).unwrap_or_else(|e| panic!("{glob:?} refused: {e}"));
        let t: Vec<char> = input.text.chars().collect();
        let p: Vec<char> = input.pattern.chars().collect();
        assert_eq!(
            parsed.matches(&input.request),
            reference_glob(&p, &t),
            "{:?} =~ {:?}",
            input.text,
            input.pattern
        );
        let equality = format!("{text} == {pattern} && !({text} != {pattern})");
        if equality.len() <= 2000 {
            let equal = Condition::parse(&equality).unwrap_or_else(|e| panic!("equality refused: {e}"));
            assert_eq!(equal.matches(&input.request), input.text == input.pattern);
        }
    }

    if let Ok(policy) = serde_json::from_slice::<CustomPolicy>(input.policy_json) {
        let errors = policy.validate();
        if errors.is_empty() {
            assert!(KeyTemplate::parse(&policy.key_template).is_ok());
            assert!(policy.condition.as_deref().is_none_or(|c| Condition::parse(c).is_ok()));
        }
    }
});
