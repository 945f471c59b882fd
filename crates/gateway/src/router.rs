//! The gateway's route table: a trie over path segments, so that finding the API and
//! resource of a request costs the length of its path, not the number of deployed APIs
//! (10 000 APIs route as fast as 10).
//!
//! A route is a path template (an API's resolved context followed by a resource
//! template) and an HTTP method. Template segments are literals, `{param}`s (one whole
//! segment) or a final `*` (any number of remaining segments, including none). When
//! several templates match a path, the most specific wins: at the first segment where
//! they differ, a literal beats a parameter, which beats `*`. If the winner lacks the
//! request's method, the next most specific match that has it is used; if none has it,
//! the answer is 405 with every method the matching templates allow. Methods are
//! case-sensitive (RFC 9110 §9.1): templates' are upper-cased as they are added, and a
//! request's `get` is not `GET`.

use foldhash::HashMap;

/// One path segment of a template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

fn parse_template(template: &str) -> Vec<Segment> {
    let segments: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.len().saturating_sub(1);
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if *s == "*" && i == last {
                Segment::Rest
            } else if s.len() > 2 && s.starts_with('{') && s.ends_with('}') {
                Segment::Param(s[1..s.len() - 1].to_string())
            } else {
                Segment::Literal((*s).to_string())
            }
        })
        .collect()
}

/// A route's value with the names of its parameters in template order.
#[derive(Clone, Debug)]
struct Endpoint<T> {
    params: Vec<String>,
    value: T,
}

/// Method → endpoint, for one template shape.
type Methods<T> = Vec<(String, Endpoint<T>)>;

#[derive(Clone, Debug)]
struct Node<T> {
    literals: HashMap<String, Node<T>>,
    param: Option<Box<Node<T>>>,
    /// Templates ending here.
    here: Methods<T>,
    /// Templates ending in `*` here.
    rest: Methods<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            literals: HashMap::default(),
            param: None,
            here: Vec::new(),
            rest: Vec::new(),
        }
    }
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch<'a, T> {
    /// A route for the path and method, with its path parameters by name.
    Found {
        /// The route's value.
        value: &'a T,
        /// `(name, value)` of each `{param}`, in template order.
        params: Vec<(&'a str, String)>,
    },
    /// Templates match the path, but none allows the method; these do (sorted).
    MethodNotAllowed(Vec<String>),
    /// No template matches the path.
    NotFound,
}

/// A route table from path templates and methods to values.
#[derive(Clone, Debug)]
pub struct RouteTable<T> {
    root: Node<T>,
    len: usize,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T> RouteTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many routes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a route; returns `false` (and keeps the first) when the same template shape
    /// and method were already added.
    pub fn insert(&mut self, template: &str, method: &str, value: T) -> bool {
        let segments = parse_template(template);
        let mut node = &mut self.root;
        let mut params = Vec::new();
        let mut ends_in_rest = false;
        for segment in segments {
            match segment {
                Segment::Literal(l) => node = node.literals.entry(l).or_default(),
                Segment::Param(p) => {
                    params.push(p);
                    node = node.param.get_or_insert_with(Default::default);
                }
                Segment::Rest => ends_in_rest = true,
            }
        }
        let list = if ends_in_rest { &mut node.rest } else { &mut node.here };
        let method = method.to_ascii_uppercase();
        if list.iter().any(|(m, _)| *m == method) {
            return false;
        }
        list.push((method, Endpoint { params, value }));
        self.len += 1;
        true
    }

    /// Finds the route for `method` and a request path. The trie is walked most specific
    /// first and stops at the first template that has the method: nothing is gathered
    /// for a call that routes, and the methods of the templates passed are gathered
    /// only for the 405 answer.
    pub fn find<'a>(&'a self, method: &str, path: &str) -> RouteMatch<'a, T> {
        let mut walk = Walk {
            method,
            captured: Vec::new(),
            matched_any: false,
            allow: Vec::new(),
        };
        if let Some(endpoint) = walk.search(&self.root, path) {
            let params = endpoint
                .params
                .iter()
                .map(String::as_str)
                .zip(walk.captured.iter().map(|s| (*s).to_string()))
                .collect();
            return RouteMatch::Found {
                value: &endpoint.value,
                params,
            };
        }
        if !walk.matched_any {
            return RouteMatch::NotFound;
        }
        let mut allow: Vec<String> = walk.allow.into_iter().map(str::to_string).collect();
        allow.sort();
        allow.dedup();
        RouteMatch::MethodNotAllowed(allow)
    }
}

/// One lookup's walk down the trie.
struct Walk<'t, 'p, 'm> {
    method: &'m str,
    /// The segments the parameters on the current path captured.
    captured: Vec<&'p str>,
    /// Whether some template matched the path (whatever its methods).
    matched_any: bool,
    /// The methods of the templates that matched without the request's method.
    allow: Vec<&'t str>,
}

impl<'t, 'p> Walk<'t, 'p, '_> {
    /// The most specific endpoint below `node` matching the path's `rest` and the
    /// method; `captured` then holds its parameters' segments. The path is read a
    /// segment at a time, empty segments skipped (`/a//b/` is `/a/b`).
    fn search<T>(&mut self, node: &'t Node<T>, rest: &'p str) -> Option<&'t Endpoint<T>> {
        // Byte searches: `/` is ASCII, and a `char` pattern costs a searcher per call.
        let rest = rest
            .get(rest.bytes().take_while(|b| *b == b'/').count()..)
            .unwrap_or("");
        if rest.is_empty() {
            if let Some(found) = self.offer(&node.here) {
                return Some(found);
            }
        } else {
            let (segment, after) = rest.split_at(rest.bytes().position(|b| b == b'/').unwrap_or(rest.len()));
            if let Some(found) = node.literals.get(segment).and_then(|child| self.search(child, after)) {
                return Some(found);
            }
            if let Some(child) = &node.param {
                self.captured.push(segment);
                if let Some(found) = self.search(child, after) {
                    return Some(found);
                }
                self.captured.pop();
            }
        }
        self.offer(&node.rest)
    }

    /// The endpoint of `methods` for the request's method, if the list has one.
    fn offer<T>(&mut self, methods: &'t Methods<T>) -> Option<&'t Endpoint<T>> {
        if methods.is_empty() {
            return None;
        }
        self.matched_any = true;
        match methods.iter().find(|(m, _)| m == self.method) {
            Some((_, endpoint)) => Some(endpoint),
            None => {
                self.allow.extend(methods.iter().map(|(m, _)| m.as_str()));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The segments of a request path as the reference matcher splits it (empty
    /// segments ignored).
    fn path_segments(path: &str) -> Vec<&str> {
        path.split('/').filter(|s| !s.is_empty()).collect()
    }

    fn found<'a>(m: RouteMatch<'a, &'static str>) -> Option<(&'static str, Vec<(&'a str, String)>)> {
        match m {
            RouteMatch::Found { value, params } => Some((*value, params)),
            _ => None,
        }
    }

    #[test]
    fn literals_beat_params_beat_wildcards_and_methods_fall_through() {
        let mut t = RouteTable::new();
        assert!(t.insert("/pets/1.0.0/pets/{petId}", "GET", "get-pet"));
        assert!(t.insert("/pets/1.0.0/pets/mine", "GET", "mine"));
        assert!(t.insert("/pets/1.0.0/pets/{id}", "DELETE", "delete-pet"));
        assert!(t.insert("/pets/1.0.0/*", "POST", "any-post"));
        assert!(!t.insert("/pets/1.0.0/pets/{other}", "get", "duplicate"));
        assert_eq!(t.len(), 4);

        assert_eq!(found(t.find("GET", "/pets/1.0.0/pets/mine")).unwrap().0, "mine");
        let (v, params) = found(t.find("GET", "/pets/1.0.0/pets/42?x=1".split('?').next().unwrap())).unwrap();
        assert_eq!((v, params), ("get-pet", vec![("petId", "42".to_string())]));
        let (v, params) = found(t.find("DELETE", "/pets/1.0.0/pets/42/")).unwrap();
        assert_eq!((v, params), ("delete-pet", vec![("id", "42".to_string())]));
        // Methods are case-sensitive: `delete` is another (unknown) method.
        assert_eq!(
            t.find("delete", "/pets/1.0.0/pets/42"),
            RouteMatch::MethodNotAllowed(vec!["DELETE".into(), "GET".into(), "POST".into()])
        );
        // No template for POST on /pets/42 itself: the wildcard takes it.
        assert_eq!(found(t.find("POST", "/pets/1.0.0/pets/42")).unwrap().0, "any-post");
        assert_eq!(
            found(t.find("POST", "/pets/1.0.0")).unwrap().0,
            "any-post",
            "* matches nothing too"
        );
        assert_eq!(
            t.find("PUT", "/pets/1.0.0/pets/42"),
            RouteMatch::MethodNotAllowed(vec!["DELETE".into(), "GET".into(), "POST".into()])
        );
        assert_eq!(t.find("GET", "/cats/1.0.0/x"), RouteMatch::NotFound);
        assert_eq!(t.find("GET", "/pets/2.0.0/pets/1"), RouteMatch::NotFound);
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Found(usize, Vec<String>),
        NotAllowed(Vec<String>),
        NotFound,
    }

    fn from_trie(m: RouteMatch<'_, usize>) -> Outcome {
        match m {
            RouteMatch::Found { value, params } => Outcome::Found(*value, params.into_iter().map(|(_, v)| v).collect()),
            RouteMatch::MethodNotAllowed(allow) => Outcome::NotAllowed(allow),
            RouteMatch::NotFound => Outcome::NotFound,
        }
    }

    /// The obvious matcher: try every template, keep the most specific that allows the
    /// method. The trie must answer exactly as this does.
    fn linear(routes: &[(String, String, usize)], method: &str, path: &str) -> Outcome {
        let segs = path_segments(path);
        // Rank of each segment (literal 3, param 2, rest 0; the end of a template without
        // `*` ranks 1, so `/a` beats `/a/*` for `/a`), compared lexicographically.
        type Ranked<'r> = (Vec<u8>, &'r (String, String, usize), Vec<String>);
        let mut matching: Vec<Ranked> = Vec::new();
        for r in routes {
            let mut rank = Vec::new();
            let mut captured = Vec::new();
            let mut i = 0;
            let mut ok = true;
            for s in parse_template(&r.0) {
                match s {
                    Segment::Rest => {
                        rank.push(0);
                        i = segs.len();
                        break;
                    }
                    _ if i >= segs.len() => {
                        ok = false;
                        break;
                    }
                    Segment::Literal(l) if l == segs[i] => rank.push(3),
                    Segment::Literal(_) => {
                        ok = false;
                        break;
                    }
                    Segment::Param(_) => {
                        rank.push(2);
                        captured.push(segs[i].to_string());
                    }
                }
                i += 1;
            }
            if rank.last() != Some(&0) {
                rank.push(1);
            }
            if ok && i == segs.len() {
                matching.push((rank, r, captured));
            }
        }
        if matching.is_empty() {
            return Outcome::NotFound;
        }
        // Most specific first; equal ranks are the same shape, kept in insertion order.
        matching.sort_by(|a, b| b.0.cmp(&a.0));
        if let Some((_, r, captured)) = matching.iter().find(|(_, r, _)| r.1.to_ascii_uppercase() == method) {
            return Outcome::Found(r.2, captured.clone());
        }
        let mut allow: Vec<String> = matching.iter().map(|(_, r, _)| r.1.to_ascii_uppercase()).collect();
        allow.sort();
        allow.dedup();
        Outcome::NotAllowed(allow)
    }

    fn template() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "{p}", "{q}"]), 0..4),
            any::<bool>(),
        )
            .prop_map(|(segs, rest)| {
                let mut t = format!("/{}", segs.join("/"));
                if rest {
                    t.push_str(if t.ends_with('/') { "*" } else { "/*" });
                }
                t
            })
    }

    fn request_path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x"]), 0..5)
            .prop_map(|segs| format!("/{}", segs.join("/")))
    }

    fn method() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "get", "Post"])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn the_trie_answers_as_the_linear_matcher(
            templates in prop::collection::vec((template(), method()), 0..12),
            requests in prop::collection::vec((method(), request_path()), 1..8),
        ) {
            let mut table = RouteTable::new();
            let mut accepted = Vec::new();
            for (i, (t, m)) in templates.iter().enumerate() {
                if table.insert(t, m, i) {
                    accepted.push((t.clone(), m.to_string(), i));
                }
            }
            for (m, path) in &requests {
                prop_assert_eq!(from_trie(table.find(m, path)), linear(&accepted, m, path), "{} {}", m, path);
            }
        }
    }
}
