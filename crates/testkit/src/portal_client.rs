//! The web portals over plain HTTP, without a browser: a visitor that signs in through the
//! key manager's real login page, keeps its cookies by hand, sees every redirect, and
//! echoes the CSRF token in its forms as a page would. Also small readers of the pages'
//! HTML (a form, a field's value, the error next to it, an error box, the visible text),
//! parsed by `scraper` (html5ever) as a browser parses them, entities decoded.
//!
//! Test-only: it exists so that end-to-end tests can check what each form answers (status,
//! message, what was kept) quickly and precisely; the browser tests cover the rest.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use scraper::{ElementRef, Html};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The CSRF cookie the portals set and every form echoes in its `csrf` field.
pub const CSRF_COOKIE: &str = "tg_csrf";
/// The session cookie (the signed-in user's access token).
pub const SESSION_COOKIE: &str = "tg_session";

/// One visitor of the portals on `base` (`http://host:port` of the management listener),
/// signed in or anonymous, with its own cookie jar. Redirects are not followed, so a test
/// sees each 303.
pub struct PortalSession {
    base: String,
    client: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    /// The last whole `Set-Cookie` line seen for each cookie (with its attributes).
    set_cookie_lines: Mutex<BTreeMap<String, String>>,
}

impl PortalSession {
    /// An anonymous visitor with no cookies yet.
    pub fn signed_out(base: &str) -> Self {
        crate::install_crypto_provider();
        Self {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            cookies: Mutex::new(BTreeMap::new()),
            set_cookie_lines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Signs in as `username` the way a browser does: the portals' sign-in start, the key
    /// manager's login page (its hidden fields plus the credentials), the callback with
    /// the sign-in cookie. Panics, with the page seen, if any step goes elsewhere.
    pub async fn sign_in(base: &str, username: &str, password: &str) -> Self {
        let (s, next) = Self::sign_in_with_next(base, username, password, "/devportal").await;
        assert_eq!(next.as_deref(), Some("/devportal"), "after signing in");
        s
    }

    /// Signs in as [`Self::sign_in`] does, starting from `/portals/sign-in?next=NEXT`
    /// (`next` put in the query as given, so that a test can send any encoding): the
    /// session, and the `Location` the callback sent the browser to.
    pub async fn sign_in_with_next(base: &str, username: &str, password: &str, next: &str) -> (Self, Option<String>) {
        let s = Self::signed_out(base);
        let start = format!("/portals/sign-in?next={next}");
        let (status, html, login) = s.send(Method::GET, &start, None, &[]).await;
        let login = login.unwrap_or_else(|| panic!("sign-in start answered {status} without a redirect: {html}"));
        assert!(login.contains("/oauth2/authorize?"), "sign-in start went to {login}");
        let (status, page, _) = s.send(Method::GET, &login, None, &[]).await;
        assert_eq!(status, 200, "the login page: {page}");
        let login_form = form_with_action(&page, "/oauth2/authorize")
            .unwrap_or_else(|| panic!("no login form on the key manager's page: {page}"));
        let mut fields: Vec<(String, String)> = controls(&login_form)
            .into_iter()
            .filter(|c| c.attr("type") == Some("hidden"))
            .filter_map(|c| Some((c.attr("name")?.to_string(), c.attr("value").unwrap_or("").to_string())))
            .collect();
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), password.into()));
        let (status, html, callback) = s.send(Method::POST, "/oauth2/authorize", Some(&fields), &[]).await;
        let callback = callback.unwrap_or_else(|| {
            panic!(
                "signing in as {username} answered {status} without a redirect: {}",
                page_text(&html)
            )
        });
        assert!(
            callback.contains("/portals/callback?") && callback.contains("code="),
            "the key manager sent {username} to {callback}"
        );
        let (status, html, next) = s.send(Method::GET, &callback, None, &[]).await;
        assert_eq!(status, 303, "the callback: {}", page_text(&html));
        assert!(
            s.cookie(SESSION_COOKIE).is_some(),
            "no session cookie after signing in as {username}"
        );
        (s, next)
    }

    /// The management listener's base URL this visitor talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Puts cookie `name` in the jar (a cookie carried over from another session).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .expect("cookie jar")
            .insert(name.to_string(), value.to_string());
    }

    /// Drops cookie `name` from the jar, as a browser does when its `Max-Age` has passed.
    pub fn forget_cookie(&self, name: &str) {
        self.cookies.lock().expect("cookie jar").remove(name);
    }

    /// The last `Set-Cookie` line the server sent for cookie `name`, attributes included
    /// (`tg_refresh=…; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax`).
    pub fn set_cookie_line(&self, name: &str) -> Option<String> {
        self.set_cookie_lines.lock().expect("cookie lines").get(name).cloned()
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookie jar").get(name).cloned()
    }

    /// `GET path` (or a full URL): status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, html, _) = self.send(Method::GET, path, None, &[]).await;
        (status, html)
    }

    /// Posts a form as a page of the portals would: `fields` urlencoded, plus the `csrf`
    /// field from the CSRF cookie (fetched with a GET first when the jar has none yet) and
    /// this site's `Origin`. Status, body and `Location`.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
        if self.cookie(CSRF_COOKIE).is_none() {
            let (status, _) = self.get("/portals/static/portal.css").await;
            assert_eq!(status, 200, "the GET that fetches a CSRF cookie");
        }
        let token = self.cookie(CSRF_COOKIE).expect("the portals set a CSRF cookie");
        let mut all: Vec<(String, String)> = vec![("csrf".into(), token)];
        all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let origin = self.base.clone();
        self.send(Method::POST, path, Some(&all), &[(ORIGIN.as_str(), origin.as_str())])
            .await
    }

    /// Posts `fields` exactly as given (no `csrf` field added) with `headers`, for tests
    /// of the CSRF check itself. Status, body and `Location`.
    pub async fn post_form_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let all: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.send(Method::POST, path, Some(&all), headers).await
    }

    /// Posts `body` as `content_type` exactly as given (a multipart upload, say), with
    /// `headers`. Status, body and `Location`.
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let mut all: Vec<(&str, &str)> = vec![(CONTENT_TYPE.as_str(), content_type)];
        all.extend_from_slice(headers);
        self.send_body(Method::POST, path, Some(body), &all).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: Option<&[(String, String)]>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        match form {
            Some(fields) => {
                let body = urlencoded(fields);
                let mut all: Vec<(&str, &str)> = vec![(CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded")];
                all.extend_from_slice(headers);
                self.send_body(method, path, Some(body.into_bytes()), &all).await
            }
            None => self.send_body(method, path, None, headers).await,
        }
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.client.request(method.clone(), &url);
        let jar = self
            .cookies
            .lock()
            .expect("cookie jar")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !jar.is_empty() {
            req = req.header(COOKIE, jar);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        {
            let mut jar = self.cookies.lock().expect("cookie jar");
            for set in res.headers().get_all(SET_COOKIE) {
                let Some((name, value)) = set
                    .to_str()
                    .ok()
                    .and_then(|s| s.split(';').next())
                    .and_then(|pair| pair.split_once('='))
                else {
                    continue;
                };
                let line = set.to_str().unwrap_or("");
                self.set_cookie_lines
                    .lock()
                    .expect("cookie lines")
                    .insert(name.trim().to_string(), line.to_string());
                let deleted = line.to_ascii_lowercase().contains("max-age=0");
                if deleted || value.trim().is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = res.text().await.unwrap_or_default();
        (status, body, location)
    }
}

/// `fields` as an `application/x-www-form-urlencoded` body.
fn urlencoded(fields: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One element of a page, detached from the parsed document (so it outlives it): its name
/// and attributes, entities decoded.
#[derive(Clone, Debug)]
pub struct Tag {
    /// The element's name, lower case.
    pub name: String,
    /// Its attributes, sorted by name; a bare attribute (`required`) has the value "".
    pub attrs: Vec<(String, String)>,
}

impl Tag {
    fn of(element: ElementRef<'_>) -> Self {
        let e = element.value();
        Self {
            name: e.name().to_string(),
            attrs: e.attrs().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the `class` attribute holds every class of `classes` (space-separated).
    pub fn has_classes(&self, classes: &str) -> bool {
        let own: Vec<&str> = self.attr("class").unwrap_or("").split_whitespace().collect();
        classes.split_whitespace().all(|c| own.contains(&c))
    }
}

/// Every element of `html` in document order, as a browser builds the tree (so the
/// implied `html`, `head` and `body` are included).
pub fn tags(html: &str) -> Vec<Tag> {
    elements(&Html::parse_document(html)).map(Tag::of).collect()
}

/// The visible text of an HTML fragment or page: entities decoded, scripts and styles
/// left out, every tag a word break, white space collapsed.
pub fn page_text(html: &str) -> String {
    text(Html::parse_document(html).root_element())
}

/// The form with `id="{id}"` (its whole HTML), to read one form of a page that has
/// several with the same field names.
pub fn form(html: &str, id: &str) -> Option<String> {
    form_where(html, |f| f.attr("id") == Some(id))
}

/// The first form whose `action` is `action` (its whole HTML).
pub fn form_with_action(html: &str, action: &str) -> Option<String> {
    form_where(html, |f| f.attr("action") == Some(action))
}

/// The form controls (`input`, `select`, `textarea`) of an HTML fragment, in order.
pub fn controls(html: &str) -> Vec<Tag> {
    elements(&Html::parse_document(html))
        .filter(is_control)
        .map(Tag::of)
        .collect()
}

/// What the first control named `name` holds as drawn: an input's `value` (a checkbox's
/// only when checked), a textarea's text, a select's selected option (else its first).
/// `None` when there is no such control, or an unchecked box, or an input without value.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let control = elements(&doc).find(|e| is_control(e) && e.attr("name") == Some(name))?;
    match control.value().name() {
        "textarea" => Some(control.text().collect()),
        "select" => {
            let options: Vec<ElementRef<'_>> = control
                .descendent_elements()
                .filter(|e| e.value().name() == "option")
                .collect();
            let chosen = options
                .iter()
                .find(|o| o.attr("selected").is_some())
                .or(options.first())?;
            Some(chosen.attr("value").map_or_else(|| text(*chosen), String::from))
        }
        _ => {
            if matches!(control.attr("type"), Some("checkbox" | "radio")) && control.attr("checked").is_none() {
                return None;
            }
            control.attr("value").map(String::from)
        }
    }
}

/// Every value of the checked boxes named `name`.
pub fn checked_values(html: &str, name: &str) -> Vec<String> {
    controls(html)
        .into_iter()
        .filter(|t| t.attr("name") == Some(name) && t.attr("checked").is_some())
        .filter_map(|t| t.attr("value").map(String::from))
        .collect()
}

/// The text of every element whose class list holds all of `classes` (e.g.
/// `"field-error"`, `"alert error"`).
pub fn texts_with_class(html: &str, classes: &str) -> Vec<String> {
    elements(&Html::parse_document(html))
        .filter(|e| has_classes(*e, classes))
        .map(text)
        .collect()
}

/// The text of the `field-error` drawn next to the control named `name`: the first
/// after it, before any control of another name and before its form ends. `None` when
/// the field shows no error.
pub fn field_error(html: &str, name: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let all: Vec<ElementRef<'_>> = elements(&doc).collect();
    let first = all.iter().position(|e| is_control(e) && e.attr("name") == Some(name))?;
    let form = all[first]
        .ancestors()
        .find(|a| a.value().as_element().is_some_and(|e| e.name() == "form"));
    for e in &all[first + 1..] {
        if let Some(form) = form
            && !e.ancestors().any(|a| a.id() == form.id())
        {
            return None;
        }
        if has_classes(*e, "field-error") {
            return Some(text(*e));
        }
        if is_control(e) && e.attr("type") != Some("hidden") && e.attr("name") != Some(name) {
            return None;
        }
    }
    None
}

/// Every element of `doc`, in document order.
fn elements(doc: &Html) -> impl Iterator<Item = ElementRef<'_>> {
    doc.root_element().descendent_elements()
}

fn is_control(e: &ElementRef<'_>) -> bool {
    matches!(e.value().name(), "input" | "select" | "textarea")
}

fn has_classes(e: ElementRef<'_>, classes: &str) -> bool {
    classes
        .split_whitespace()
        .all(|c| e.value().classes().any(|own| own == c))
}

/// The whole HTML of the first form of `html` that `pick` accepts.
fn form_where(html: &str, pick: impl Fn(&ElementRef<'_>) -> bool) -> Option<String> {
    let doc = Html::parse_document(html);
    elements(&doc)
        .find(|e| e.value().name() == "form" && pick(e))
        .map(|e| e.html())
}

/// The text of `e` as a person reads it: the words of its text nodes, each node a word
/// break (as each tag is), without those of scripts and styles.
fn text(e: ElementRef<'_>) -> String {
    let unread = |n: &ElementRef<'_>| matches!(n.value().name(), "script" | "style");
    e.descendants()
        .filter(|n| !n.parent().and_then(ElementRef::wrap).is_some_and(|p| unread(&p)))
        .filter_map(|n| n.value().as_text().map(|t| &**t))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><body><div class="alert error" role="alert"><p>name: is required</p></div>
<form method="post" action="/x" id="a"><input type="hidden" name="csrf" value="t">
<div class="field has-error"><label for="f-name">Name</label><input id="f-name" name="name" value="&#x2f;pets &amp; co" required>
<p class="field-error" id="e-name">is required</p></div>
<input name="other" value="o"><p class="field-error">other's</p>
<textarea name="description">a &lt;b&gt;</textarea>
<select name="plan"><option value="Gold">Gold</option><option value="Silver" selected>Silver</option></select>
<label><input type="checkbox" name="g" value="x" checked></label><label><input type="checkbox" name="g" value="y"></label>
</form><form id="b"><input name="name" value="second"></form></body></html>"#;

    #[test]
    fn reads_values_errors_and_forms() {
        assert_eq!(input_value(PAGE, "name").as_deref(), Some("/pets & co"));
        assert_eq!(input_value(PAGE, "description").as_deref(), Some("a <b>"));
        assert_eq!(input_value(PAGE, "plan").as_deref(), Some("Silver"));
        assert_eq!(input_value(PAGE, "g").as_deref(), Some("x"));
        assert_eq!(checked_values(PAGE, "g"), vec!["x"]);
        assert_eq!(field_error(PAGE, "name").as_deref(), Some("is required"));
        assert_eq!(field_error(PAGE, "description"), None);
        assert_eq!(texts_with_class(PAGE, "alert error"), vec!["name: is required"]);
        let b = form(PAGE, "b").unwrap();
        assert_eq!(input_value(&b, "name").as_deref(), Some("second"));
        assert!(form(PAGE, "a").unwrap().ends_with("</form>"));
        assert_eq!(page_text("<p>a&#39;s</p><script>x()</script> <b>b</b>"), "a's b");
    }

    /// What minijinja escapes (`/ " ' < > &`) reads back as written, in attributes and
    /// text, also from a form taken out of its page; a bare attribute does not eat the
    /// next one's name; a script's `<` is not a tag; a form's end bounds its field errors.
    #[test]
    fn decodes_the_template_escapes() {
        let page = r#"<script>if (a<b) { x() }</script><form id="f">
<input name="u" required placeholder="p" value="&#x2f;a&quot;b&#x27;c&lt;d&gt;e&amp;f">
<textarea name="t">&#x2f;a&quot;b&#x27;c&lt;d&gt;e&amp;f</textarea><input name="v" value="2"></form>
<p class="field-error">not the form's</p>"#;
        let want = Some(r#"/a"b'c<d>e&f"#);
        let f = form(page, "f").unwrap();
        for html in [page, f.as_str()] {
            assert_eq!(input_value(html, "u").as_deref(), want);
            assert_eq!(input_value(html, "t").as_deref(), want);
            assert_eq!(input_value(html, "v").as_deref(), Some("2"));
            assert_eq!(controls(html)[0].attr("placeholder"), Some("p"));
            assert_eq!(field_error(html, "v"), None);
        }
        assert_eq!(page_text(page), r#"/a"b'c<d>e&f not the form's"#);
    }

    #[test]
    fn form_bodies_are_urlencoded() {
        let fields = [
            ("a b".to_string(), "x&y=é/".to_string()),
            ("c".to_string(), String::new()),
        ];
        assert_eq!(urlencoded(&fields), "a+b=x%26y%3D%C3%A9%2F&c=");
    }
}
