//! Custom throttling rules: a limit counted per *key*, where the key is built from a
//! template over request attributes (`$userId:$apiContext`), applied to the requests a
//! condition selects. The condition language is Tollgate's own (the reference uses
//! Siddhi queries); it is documented in `docs/custom-throttling-rules.md`:
//!
//! ```text
//! condition  := or
//! or         := and ( "||" and )*
//! and        := unary ( "&&" unary )*
//! unary      := "!" unary | "(" or ")" | comparison
//! comparison := operand ( "==" | "!=" | "=~" ) operand     (=~ : glob, * matches anything)
//! operand    := $variable | 'text' | "text" | header("Name") | query("name") | claim("name")
//! ```

use crate::FieldError;
use crate::policy::ThrottleLimit;
use serde::{Deserialize, Serialize};

/// The request attributes templates and conditions may use.
pub const VARIABLES: [&str; 11] = [
    "userId",
    "apiContext",
    "apiVersion",
    "apiName",
    "appId",
    "appName",
    "apiTenant",
    "appTenant",
    "clientIp",
    "method",
    "resource",
];

/// A custom rule in the Admin API's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CustomPolicy {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Unique name among custom rules.
    pub policy_name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Output only.
    #[serde(default)]
    pub is_deployed: bool,
    /// Output only: `CustomRule`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// What the limit is counted per, e.g. `$userId:$apiContext`.
    pub key_template: String,
    /// Which requests the rule applies to; every request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The limit per key.
    pub default_limit: ThrottleLimit,
}

impl CustomPolicy {
    /// Checks every field (parsing the template and the condition), naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.policy_name.is_empty()
            || self.policy_name.len() > 60
            || !self
                .policy_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            e.push(FieldError::new(
                "policyName",
                "must be 1 to 60 letters, digits, _ - or .",
            ));
        }
        if let Err(m) = KeyTemplate::parse(&self.key_template) {
            e.push(FieldError::new("keyTemplate", m));
        }
        if let Some(c) = &self.condition
            && let Err(m) = Condition::parse(c)
        {
            e.push(FieldError::new("condition", m));
        }
        self.default_limit.validate("defaultLimit", &mut e);
        e
    }
}

/// The attributes of one request, as custom rules see them.
pub trait RequestAttributes {
    /// A `$variable`'s value (empty when unknown).
    fn variable(&self, name: &str) -> &str;
    /// A request header.
    fn header(&self, name: &str) -> Option<&str>;
    /// A query parameter.
    fn query(&self, name: &str) -> Option<&str>;
    /// A JWT claim, as text.
    fn claim(&self, name: &str) -> Option<&str>;
}

/// A parsed key template: literal text and variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate(Vec<Piece>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

fn var_name(chars: &[char], start: usize) -> (String, usize) {
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    (chars[start..end].iter().collect(), end)
}

impl KeyTemplate {
    /// Parses `$var` references in text; at least one, all known.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.len() > 200 {
            return Err("must be at most 200 characters".into());
        }
        let chars: Vec<char> = template.chars().collect();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' {
                let (name, end) = var_name(&chars, i + 1);
                if !VARIABLES.contains(&name.as_str()) {
                    return Err(format!(
                        "`${name}` at position {i} is not a variable; use {}",
                        VARIABLES.iter().map(|v| format!("${v}")).collect::<Vec<_>>().join(", ")
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(name));
                i = end;
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Var(_))) {
            return Err("must use at least one variable, e.g. $userId".into());
        }
        Ok(KeyTemplate(pieces))
    }

    /// The key for one request.
    pub fn render(&self, req: &dyn RequestAttributes) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Var(v) => req.variable(v),
            })
            .collect()
    }
}

/// A parsed condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// Either holds.
    Or(Box<Condition>, Box<Condition>),
    /// Does not hold.
    Not(Box<Condition>),
    /// A comparison.
    Compare(Operand, CompareOp, Operand),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal text.
    Eq,
    /// Different text.
    Ne,
    /// Glob match (`*` matches any run of characters).
    Glob,
}

/// A value in a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// `$variable`.
    Var(String),
    /// A quoted string.
    Text(String),
    /// `header("Name")`.
    Header(String),
    /// `query("name")`.
    Query(String),
    /// `claim("name")`.
    Claim(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Var(String),
    Text(String),
    Func(String, String),
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: usize| -> Result<(String, usize), String> {
        let q = chars[i];
        let mut j = i + 1;
        let mut s = String::new();
        while j < chars.len() && chars[j] != q {
            if chars[j] == '\\' && j + 1 < chars.len() {
                j += 1;
            }
            s.push(chars[j]);
            j += 1;
        }
        if j >= chars.len() {
            return Err(format!("unterminated string starting at position {i}"));
        }
        Ok((s, j + 1))
    };
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((i, Token::Open));
                i += 1;
            }
            ')' => {
                out.push((i, Token::Close));
                i += 1;
            }
            '\'' | '"' => {
                let (s, next) = quoted(i)?;
                out.push((i, Token::Text(s)));
                i = next;
            }
            '$' => {
                let (name, end) = var_name(&chars, i + 1);
                if !VARIABLES.contains(&name.as_str()) {
                    return Err(format!("`${name}` at position {i} is not a variable"));
                }
                out.push((i, Token::Var(name)));
                i = end;
            }
            _ if ["&&", "||", "==", "!=", "=~"].contains(&two.as_str()) => {
                let op = ["&&", "||", "==", "!=", "=~"]
                    .into_iter()
                    .find(|o| *o == two)
                    .unwrap_or("==");
                out.push((i, Token::Op(op)));
                i += 2;
            }
            '!' => {
                out.push((i, Token::Op("!")));
                i += 1;
            }
            _ if c.is_ascii_alphabetic() => {
                let (name, end) = var_name(&chars, i);
                let mut j = end;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                if !matches!(name.as_str(), "header" | "query" | "claim") || j >= chars.len() || chars[j] != '(' {
                    return Err(format!(
                        "unexpected `{name}` at position {i}; use header(\"..\"), query(\"..\"), claim(\"..\"), a $variable or a quoted string"
                    ));
                }
                j += 1;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                if j >= chars.len() || !(chars[j] == '\'' || chars[j] == '"') {
                    return Err(format!("{name}( at position {i} needs a quoted name"));
                }
                let (arg, mut k) = quoted(j)?;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                if k >= chars.len() || chars[k] != ')' {
                    return Err(format!("{name}(\"{arg}\" at position {i} needs a closing )"));
                }
                out.push((i, Token::Func(name, arg)));
                i = k + 1;
            }
            _ => return Err(format!("unexpected `{c}` at position {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> String {
        self.tokens
            .get(self.pos)
            .map(|(p, _)| format!("position {p}"))
            .unwrap_or_else(|| "the end".into())
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Op("||")) {
            self.pos += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::Op("&&")) {
            self.pos += 1;
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("is nested too deeply".into());
        }
        let result = match self.peek() {
            Some(Token::Op("!")) => {
                self.pos += 1;
                Ok(Condition::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(format!("expected ) at {}", self.at()));
                }
                self.pos += 1;
                Ok(inner)
            }
            _ => {
                let left = self.operand()?;
                let op = match self.peek() {
                    Some(Token::Op("==")) => CompareOp::Eq,
                    Some(Token::Op("!=")) => CompareOp::Ne,
                    Some(Token::Op("=~")) => CompareOp::Glob,
                    _ => return Err(format!("expected ==, != or =~ at {}", self.at())),
                };
                self.pos += 1;
                let right = self.operand()?;
                Ok(Condition::Compare(left, op, right))
            }
        };
        self.depth -= 1;
        result
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let op = match self.peek() {
            Some(Token::Var(v)) => Operand::Var(v.clone()),
            Some(Token::Text(t)) => Operand::Text(t.clone()),
            Some(Token::Func(f, a)) => match f.as_str() {
                "header" => Operand::Header(a.clone()),
                "query" => Operand::Query(a.clone()),
                _ => Operand::Claim(a.clone()),
            },
            _ => {
                return Err(format!(
                    "expected a $variable, a quoted string or header/query/claim(..) at {}",
                    self.at()
                ));
            }
        };
        self.pos += 1;
        Ok(op)
    }
}

impl Condition {
    /// Parses a condition, or says where and why it is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.len() > 2000 {
            return Err("must be at most 2000 characters".into());
        }
        let tokens = tokenize(input)?;
        if tokens.is_empty() {
            return Err("is empty; leave it out to apply the rule to every request".into());
        }
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let c = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(format!("unexpected text at {}", p.at()));
        }
        Ok(c)
    }

    /// Whether the condition holds for a request.
    pub fn matches(&self, req: &dyn RequestAttributes) -> bool {
        match self {
            Condition::And(a, b) => a.matches(req) && b.matches(req),
            Condition::Or(a, b) => a.matches(req) || b.matches(req),
            Condition::Not(a) => !a.matches(req),
            Condition::Compare(l, op, r) => {
                let (l, r) = (value(l, req), value(r, req));
                match op {
                    CompareOp::Eq => l == r,
                    CompareOp::Ne => l != r,
                    CompareOp::Glob => glob(r.unwrap_or(""), l.unwrap_or("")),
                }
            }
        }
    }
}

fn value<'a>(o: &'a Operand, req: &'a dyn RequestAttributes) -> Option<&'a str> {
    match o {
        Operand::Var(v) => Some(req.variable(v)),
        Operand::Text(t) => Some(t),
        Operand::Header(h) => req.header(h),
        Operand::Query(q) => req.query(q),
        Operand::Claim(c) => req.claim(c),
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// A request for the tests of custom rules and conditional groups.
#[cfg(test)]
pub(crate) mod test_request {
    use super::RequestAttributes;
    use std::collections::HashMap;

    /// Request attributes from a map: `name` for variables, and `h:` (lower-case), `q:` and
    /// `c:` prefixes for headers, query parameters and claims.
    pub(crate) struct Req(pub(crate) HashMap<&'static str, &'static str>);

    impl RequestAttributes for Req {
        fn variable(&self, name: &str) -> &str {
            self.0.get(name).copied().unwrap_or("")
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.0.get(format!("h:{}", name.to_ascii_lowercase()).as_str()).copied()
        }
        fn query(&self, name: &str) -> Option<&str> {
            self.0.get(format!("q:{name}").as_str()).copied()
        }
        fn claim(&self, name: &str) -> Option<&str> {
            self.0.get(format!("c:{name}").as_str()).copied()
        }
    }

    /// Alice calling `/pizza/1.0.0` from 10.1.2.3 with a gold tier header.
    pub(crate) fn req() -> Req {
        Req(HashMap::from([
            ("userId", "alice"),
            ("apiContext", "/pizza/1.0.0"),
            ("clientIp", "10.1.2.3"),
            ("h:x-tier", "gold"),
            ("q:debug", "1"),
            ("c:department", "sales"),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_request::req;

    #[test]
    fn templates_render_keys() {
        let t = KeyTemplate::parse("$userId:$apiContext").unwrap();
        assert_eq!(t.render(&req()), "alice:/pizza/1.0.0");
        assert!(
            KeyTemplate::parse("static")
                .unwrap_err()
                .contains("at least one variable")
        );
        assert!(KeyTemplate::parse("$user").unwrap_err().contains("`$user`"));
    }

    #[test]
    fn conditions_evaluate() {
        let yes = [
            "$userId == 'alice'",
            "$apiContext =~ '/pizza/*'",
            "header(\"X-Tier\") == \"gold\" && query('debug') == '1'",
            "!($userId == 'bob') || $clientIp == '0.0.0.0'",
            "claim('department') != 'finance'",
            "$clientIp =~ '10.*.3'",
        ];
        for c in yes {
            assert!(Condition::parse(c).unwrap().matches(&req()), "{c}");
        }
        let no = [
            "$userId == 'bob'",
            "header('missing') == 'x'",
            "$apiContext =~ '/burger*'",
            "!($userId == 'alice')",
        ];
        for c in no {
            assert!(!Condition::parse(c).unwrap().matches(&req()), "{c}");
        }
    }

    #[test]
    fn bad_conditions_say_where() {
        for (c, msg) in [
            ("$userId = 'x'", "position 8"),
            ("$userId == ", "the end"),
            ("($userId == 'x'", "expected )"),
            ("$nobody == 'x'", "`$nobody`"),
            ("cookie('a') == 'b'", "unexpected `cookie`"),
            ("'unterminated", "unterminated"),
            ("", "is empty"),
            ("$userId == 'x' $apiContext == 'y'", "unexpected text"),
        ] {
            let e = Condition::parse(c).unwrap_err();
            assert!(e.contains(msg), "{c}: {e}");
        }
        let deep = format!("{}$userId == 'x'{}", "(".repeat(100), ")".repeat(100));
        assert!(Condition::parse(&deep).unwrap_err().contains("nested too deeply"));
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics(s in "[ $a-zA-Z()'\"=!~&|*.:/\\\\]{0,120}") {
                let _ = Condition::parse(&s);
                let _ = KeyTemplate::parse(&s);
            }
        }
    }
}
