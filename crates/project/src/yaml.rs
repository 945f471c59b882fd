//! YAML from outside, read safely: every YAML document Tollgate takes (OpenAPI
//! definitions, project files) is read within a bound on the values it expands to (YAML
//! aliases copy in full) and on how deep flow collections nest (the reader's time doubles
//! with each level). Both bounds were found by fuzzing the OpenAPI importer.

use serde_json::Value;

/// Most values a YAML document may expand to. Aliases (`*a`) are copied in full when a
/// document is read, so a small file can expand to billions of values; counting every
/// value as it is built stops that at a bound far above any real OpenAPI document.
pub const MAX_YAML_NODES: usize = 1_000_000;

/// Most bytes of text (strings and keys) a YAML document may expand to, beyond four times
/// its own size: an alias of one long string copies the string each time it is named, so
/// counting values alone lets a few kilobytes of aliases expand to gigabytes.
pub const MAX_YAML_EXTRA_TEXT: usize = 1 << 20;

/// Deepest nesting of YAML flow collections (`{…}`, `[…]`) read. The YAML reader's time
/// doubles with each nested flow mapping (a 241-byte document of 35 nested `{` took 80 s,
/// found by the fuzz target openapi_import); documents nest flow collections a few levels deep.
pub const MAX_YAML_FLOW_DEPTH: usize = 16;

/// How deep flow collections nest in `text`, outside quoted scalars and comments (stopping
/// early once past `limit`).
pub fn flow_depth(text: &str, limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    let mut after_space = true;
    // Where a node may start: the text's start, after white space, after `[`, `{` or `,`,
    // and after `:` inside a flow collection. A quote elsewhere (`it's`, `a"b`) is part of a
    // plain scalar, and taking it for the start of a quoted one would hide what follows.
    let mut node_start = true;
    while let Some(c) = chars.next() {
        let at_node_start = node_start;
        node_start = c.is_whitespace() || matches!(c, '[' | '{' | ',') || (c == ':' && depth > 0);
        match c {
            '{' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    break;
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            '"' if at_node_start => {
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' if at_node_start => {
                while let Some(q) = chars.next() {
                    if q == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            // A comment runs to the line's end, which YAML ends with LF, CR or both.
            '#' if after_space => {
                for q in chars.by_ref() {
                    if q == '\n' || q == '\r' {
                        break;
                    }
                }
            }
            _ => {}
        }
        after_space = c.is_whitespace();
    }
    deepest
}

/// Reads YAML into a JSON value within [`MAX_YAML_NODES`] and [`MAX_YAML_FLOW_DEPTH`].
pub fn parse(text: &str) -> Result<Value, String> {
    if flow_depth(text, MAX_YAML_FLOW_DEPTH) > MAX_YAML_FLOW_DEPTH {
        return Err(format!(
            "its {{…}} and […] collections nest more than {MAX_YAML_FLOW_DEPTH} deep; write the deeper levels in block style (indented)"
        ));
    }
    let budget = Budget {
        values: std::cell::Cell::new(MAX_YAML_NODES),
        text: std::cell::Cell::new(text.len().saturating_mul(4).saturating_add(MAX_YAML_EXTRA_TEXT)),
    };
    let de = yaml_serde::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Budgeted(&budget), de).map_err(|e| e.to_string())
}

/// What a document may still expand to: values, and bytes of text.
struct Budget {
    values: std::cell::Cell<usize>,
    text: std::cell::Cell<usize>,
}

/// Builds a [`Value`], spending the shared budget: one unit per value, and each string's
/// length from the text budget.
#[derive(Clone, Copy)]
struct Budgeted<'a>(&'a Budget);

impl Budgeted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.0.values.get().checked_sub(1) {
            Some(left) => {
                self.0.values.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "it expands to more than {MAX_YAML_NODES} values (YAML aliases?)"
            ))),
        }
    }

    fn spend_text<E: serde::de::Error>(&self, len: usize) -> Result<(), E> {
        self.spend()?;
        match self.0.text.get().checked_sub(len) {
            Some(left) => {
                self.0.text.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "its text expands to more than four times its size (YAML aliases of long strings?)",
            )),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend_text(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend_text(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key_seed(self)? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_inside_a_plain_scalar_hides_no_nesting() {
        // Found by fuzz/openapi_import (a timeout): `"` in the middle of a plain scalar was
        // taken for the start of a quoted one, and 50 nested `{` after it went uncounted.
        let doc = "openapi: 3.1.0\ninfo:\n  -0btit\"2.0ve:vain1.0\nopenapi: 3.070\ni: &a {\r \r  \r#\r#o\r\r\r\r\r\r\r\r\r\r{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}info:\n  -0btit\"2}}}.0v}}}}}e}}}}}}}}}:}}}v";
        assert!(flow_depth(doc, 100) > MAX_YAML_FLOW_DEPTH);
        let err = parse(doc).unwrap_err();
        assert!(err.contains("nest more than"), "{err}");
        let apostrophe = format!("title: it's\nx: {}{}\n", "[".repeat(20), "]".repeat(20));
        assert!(parse(&apostrophe).unwrap_err().contains("nest more than"));
        // Quoted scalars still hide brackets, in block and in flow style.
        assert_eq!(flow_depth("a: \"{{{{\"\nb: '[[[['\nc: {d:\"{{{\", e: ['[[']}", 100), 2);
    }

    #[test]
    fn aliases_of_a_long_string_cannot_expand_far() {
        // 200 KB named 100 times: 20 MB of copies from a document of 200 KB.
        let long = "x".repeat(200_000);
        let names = (0..100).map(|i| format!("  k{i}: *a\n")).collect::<String>();
        let doc = format!("base: &a {long}\ncopies:\n{names}");
        let err = parse(&doc).unwrap_err();
        assert!(err.contains("text expands to more than"), "{err}");
        // A few copies are fine.
        let doc = format!("base: &a {long}\ncopies: [*a, *a]\n");
        assert!(parse(&doc).is_ok());
    }

    #[test]
    fn aliases_of_many_values_cannot_expand_far() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            doc.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        // Refused by the budget, or by the YAML reader's own limit on repetitions.
        let err = parse(&doc).unwrap_err();
        assert!(err.contains("more than") || err.contains("repetition limit"), "{err}");
    }
}
