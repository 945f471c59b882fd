//! Rendering pages: the templates (compiled into the binary, so a node needs no files
//! beside it), the context every page shares (who is signed in, the CSRF token, which
//! portal), and the security headers every page carries.

use crate::session::Visitor;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde_json::{Map, Value, json};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "macros.html",
    "charts.html",
    "error.html",
    "devportal/apis.html",
    "devportal/api.html",
    "devportal/signup.html",
    "devportal/applications.html",
    "devportal/application.html",
    "devportal/application_form.html",
    "publisher/apis.html",
    "publisher/api.html",
    "publisher/create.html",
    "publisher/edit.html",
    "publisher/import.html",
    "publisher/subscriptions.html",
    "publisher/document.html",
    "admin/key_managers.html",
    "publisher/analytics.html",
    "devportal/analytics.html",
    "admin/analytics.html",
    "admin/home.html",
    "admin/policies.html",
    "admin/deny_policies.html",
    "admin/environments.html",
    "admin/users.html",
];

/// The template environment.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    /// Parses every template (HTML-escaped output everywhere).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("truncate", truncate);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders `template` for `visitor` with `context` (a JSON object) and status 200.
    pub fn render(&self, visitor: &Visitor, template: &str, context: Value) -> Response {
        self.render_status(StatusCode::OK, visitor, template, context)
    }

    /// As [`render`](Self::render) with another status (a form with errors is a 400).
    pub fn render_status(&self, status: StatusCode, visitor: &Visitor, template: &str, context: Value) -> Response {
        let mut all = Map::new();
        all.insert("visitor".into(), visitor.template_value());
        all.insert("csrf".into(), Value::String(visitor.csrf.clone()));
        all.insert(
            "portal".into(),
            Value::String(template.split_once('/').map(|(p, _)| p).unwrap_or("devportal").into()),
        );
        if let Value::Object(m) = context {
            all.extend(m);
        }
        match self
            .env
            .get_template(template)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&all))))
        {
            Ok(html) => with_headers(status, html),
            Err(e) => {
                tracing::error!(template, error = %e, "Cannot render a portal page.");
                self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "This page failed",
                    "The server could not draw this page. Try again; if it keeps failing, tell the operator.",
                )
            }
        }
    }

    /// A page that says what went wrong and what to do (no visitor details needed).
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let ctx = json!({ "status": status.as_u16(), "title": title, "message": message, "visitor": {}, "portal": "" });
        match self
            .env
            .get_template("error.html")
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        {
            Ok(html) => with_headers(status, html),
            Err(e) => {
                tracing::error!(error = %e, "Cannot render the error page.");
                (status, title.to_string()).into_response()
            }
        }
    }

    /// The 403 page for a signed-in user whose roles do not allow a portal.
    pub fn forbidden(&self, visitor: &Visitor, needed: &str) -> Response {
        self.render_status(
            StatusCode::FORBIDDEN,
            visitor,
            "error.html",
            json!({
                "status": 403,
                "title": "You cannot open this page",
                "message": format!("This page needs the {needed} role. Ask an administrator for it, or sign in as another user."),
            }),
        )
    }
}

/// Adds `extra`'s keys to the template context `ctx` (both JSON objects).
pub fn merge(mut ctx: Value, extra: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut ctx, extra) {
        a.extend(b);
    }
    ctx
}

/// The page for a REST call that failed while drawing a page: the sign-in redirect for
/// 401, the 403 page naming `role`, the 404 page, or an error page with the answer.
pub fn failed(pages: &Pages, visitor: &Visitor, e: crate::rest::RestError, role: &str) -> Response {
    match e.status {
        401 => crate::session::sign_in_redirect(&visitor.path),
        403 => pages.forbidden(visitor, role),
        404 => pages.error(StatusCode::NOT_FOUND, "Not found", &e.message),
        s => pages.error(
            StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
            "Something went wrong",
            &e.message,
        ),
    }
}

/// A form page drawn again after a refused submit (status 400): its context `ctx` with
/// `extra` (what was typed, the errors), or the failure page if the context could not
/// be read.
pub fn redraw(
    pages: &Pages,
    visitor: &Visitor,
    template: &str,
    role: &str,
    ctx: Result<Value, crate::rest::RestError>,
    extra: Value,
) -> Response {
    show(pages, visitor, template, role, StatusCode::BAD_REQUEST, ctx, extra)
}

/// A page drawn from its context `ctx` with `extra`, with `status`; or the failure page
/// if the context could not be read.
pub fn show(
    pages: &Pages,
    visitor: &Visitor,
    template: &str,
    role: &str,
    status: StatusCode,
    ctx: Result<Value, crate::rest::RestError>,
    extra: Value,
) -> Response {
    match ctx {
        Ok(ctx) => pages.render_status(status, visitor, template, merge(ctx, extra)),
        Err(e) => failed(pages, visitor, e, role),
    }
}

/// What a form's POST answers once its REST call is done: `done` with the answer; the
/// failure page for an expired session (401); otherwise `redraw` with the form
/// `form_key` showing what was sent (`values`) and why it was refused.
// Each argument is one thing a form handler knows; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn answer_form<D, R>(
    pages: &Pages,
    visitor: &Visitor,
    role: &str,
    outcome: Result<Value, crate::rest::RestError>,
    done: impl FnOnce(Value) -> D,
    form_key: &str,
    values: Value,
    redraw: impl FnOnce(Value) -> R,
) -> Response
where
    D: std::future::Future<Output = Response>,
    R: std::future::Future<Output = Response>,
{
    match outcome {
        Ok(answer) => done(answer).await,
        Err(e) if e.status == 401 => failed(pages, visitor, e, role),
        Err(e) => {
            let mut extra = serde_json::Map::new();
            extra.insert(form_key.to_string(), crate::form::refused(values, &e));
            redraw(Value::Object(extra)).await
        }
    }
}

/// `text|truncate(n)`: at most `n` characters, with an ellipsis when cut.
fn truncate(text: String, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text,
    }
}

fn with_headers(status: StatusCode, html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_on_characters() {
        assert_eq!(truncate("héllo world".into(), 5), "héllo…");
        assert_eq!(truncate("short".into(), 10), "short");
    }

    #[test]
    fn every_template_parses_and_the_error_page_escapes() {
        let pages = Pages::new().unwrap_or_else(|e| panic!("{e:#}"));
        let res = pages.error(StatusCode::NOT_FOUND, "<b>x</b>", "m");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res.headers().contains_key(CONTENT_SECURITY_POLICY));
    }
}
