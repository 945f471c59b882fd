//! Path routing (`tollgate_gateway::router`): route tables of templates the fuzzer writes,
//! looked up with request paths it writes. The trie answers as the obvious matcher does
//! (every template tried, the most specific that allows the method kept, 405 with the
//! allowed methods otherwise), and the normalisation it documents holds: empty segments
//! do not count (`/a//b/` routes as `/a/b`), methods are matched without case.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate_gateway::router::{RouteMatch, RouteTable};

/// A segment drawn from a few, so that templates and paths meet.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Piece {
    A,
    B,
    Dot,
    Param,
    OtherParam,
    Star,
    Empty,
    Odd,
}

impl Piece {
    fn text(self) -> &'static str {
        match self {
            Piece::A => "a",
            Piece::B => "b",
            Piece::Dot => "..",
            Piece::Param => "{p}",
            Piece::OtherParam => "{q}",
            Piece::Star => "*",
            Piece::Empty => "",
            Piece::Odd => "{}",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Text<'a> {
    Pieces(Vec<Piece>),
    Raw(&'a str),
}

impl Text<'_> {
    fn render(&self) -> String {
        match self {
            Text::Pieces(p) => format!("/{}", p.iter().map(|p| p.text()).collect::<Vec<_>>().join("/")),
            Text::Raw(s) => (*s).to_string(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    routes: Vec<(Text<'a>, u8)>,
    requests: Vec<(Text<'a>, u8, u8)>,
}

const METHODS: [&str; 5] = ["GET", "POST", "put", "Delete", "PATCH"];

/// The segments of a template as the router documents them.
#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Literal(&'a str),
    Param,
    Rest,
}

fn template(t: &str) -> Vec<Seg<'_>> {
    let parts: Vec<&str> = t.split('/').filter(|s| !s.is_empty()).collect();
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, s)| match *s {
            "*" if i + 1 == n => Seg::Rest,
            s if s.len() > 2 && s.starts_with('{') && s.ends_with('}') => Seg::Param,
            s => Seg::Literal(s),
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Answer {
    Found(usize, Vec<String>),
    NotAllowed(Vec<String>),
    NotFound,
}

/// How specific a template's match is, segment by segment: literal 3, parameter 2, the
/// end of a template without `*` 1, `*` 0; compared lexicographically.
fn specificity(segs: &[Seg<'_>], path: &[&str]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut rank = Vec::new();
    let mut captured = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Rest => {
                rank.push(0);
                return Some((rank, captured));
            }
            _ if i >= path.len() => return None,
            Seg::Literal(l) if *l == path[i] => rank.push(3),
            Seg::Literal(_) => return None,
            Seg::Param => {
                rank.push(2);
                captured.push(path[i].to_string());
            }
        }
    }
    (segs.len() == path.len()).then(|| {
        rank.push(1);
        (rank, captured)
    })
}

fn obvious(routes: &[(String, String, usize)], method: &str, path: &str) -> Answer {
    let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut matching: Vec<(Vec<u8>, usize, &str, Vec<String>)> = routes
        .iter()
        .filter_map(|(t, m, v)| specificity(&template(t), &path).map(|(rank, cap)| (rank, *v, m.as_str(), cap)))
        .collect();
    if matching.is_empty() {
        return Answer::NotFound;
    }
    // Most specific first; the same shape keeps the order routes were added in. Routes take
    // their methods in any case (as definitions write them); requests are case-sensitive.
    matching.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    if let Some((_, v, _, cap)) = matching.iter().find(|(_, _, m, _)| m.to_ascii_uppercase() == method) {
        return Answer::Found(*v, cap.clone());
    }
    let mut allow: Vec<String> = matching.iter().map(|(_, _, m, _)| m.to_ascii_uppercase()).collect();
    allow.sort();
    allow.dedup();
    Answer::NotAllowed(allow)
}

fn trie(table: &RouteTable<usize>, method: &str, path: &str) -> Answer {
    match table.find(method, path) {
        RouteMatch::Found { value, params } => Answer::Found(*value, params.into_iter().map(|(_, v)| v).collect()),
        RouteMatch::MethodNotAllowed(allow) => Answer::NotAllowed(allow),
        RouteMatch::NotFound => Answer::NotFound,
    }
}

fuzz_target!(|input: Input<'_>| {
    let mut table = RouteTable::new();
    let mut added = Vec::new();
    for (i, (t, m)) in input.routes.iter().take(64).enumerate() {
        let (t, m) = (t.render(), METHODS[usize::from(*m) % METHODS.len()]);
        if table.insert(&t, m, i) {
            added.push((t, m.to_string(), i));
        }
    }
    assert_eq!(table.len(), added.len());
    for (path, m, slashes) in input.requests.iter().take(64) {
        let (path, method) = (path.render(), METHODS[usize::from(*m) % METHODS.len()]);
        let answer = trie(&table, method, &path);
        assert_eq!(answer, obvious(&added, method, &path), "{method} {path:?}");
        // Empty segments do not count.
        let doubled = path.replacen('/', &"/".repeat(usize::from(*slashes % 4) + 1), usize::from(*slashes));
        assert_eq!(trie(&table, method, &doubled), answer, "{method} {doubled:?}");
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is another method, never served
        // as GET; where the path exists, it is not allowed there.
        let lower = method.to_ascii_lowercase();
        if lower != method {
            let got = trie(&table, &lower, &path);
            match answer {
                Answer::NotFound => assert_eq!(got, Answer::NotFound, "{lower} {path:?}"),
                _ => assert!(matches!(got, Answer::NotAllowed(_)), "{lower} {path:?}: {got:?}"),
            }
        }
    }
});
