//! The browser fixture against a one-page form served here: fill, choose, submit, read the
//! answer back, screenshot. Skipped (with the reason printed) without Chromium.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tollgate_testkit::Browser;

const FORM: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Self-test</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<form id="greet" method="post" action="/">
  <label for="f-name">Name</label> <input id="f-name" name="name" value="placeholder">
  <label for="f-tone">Tone</label>
  <select id="f-tone" name="tone"><option>Plain</option><option>Loud</option></select>
  <button type="submit">Send</button>
</form>
</body></html>"#;

/// The form's body (`a=b&c=d`, URL-encoded) as pairs.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn answer(body: String) -> Html<String> {
    let pairs = form_pairs(&body);
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let text = match field("tone") {
        "Loud" => field("name").to_uppercase(),
        _ => field("name").to_string(),
    };
    Html(format!(
        r#"<!doctype html><html><body><p>Submitted:</p><p id="shown">Hello, {}!</p></body></html>"#,
        escape(&text)
    ))
}

#[tokio::test]
async fn drives_a_form_in_headless_chromium() {
    let Some(b) = Browser::start().await else { return };
    let server = tollgate_testkit::serve(Router::new().route("/", get(|| async { Html(FORM) }).post(answer))).await;

    b.goto(&format!("http://{}/", server.addr)).await;
    b.fill("#f-name", "Ada <& Grace>").await;
    b.select_by_label("#f-tone", "Loud").await;
    b.click("#greet button[type=submit]").await;
    b.wait_for("#shown").await;
    assert_eq!(b.text_of("#shown").await, "Hello, ADA <& GRACE>!");
    assert!(b.url().await.ends_with('/'), "posted back to the same page");

    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shots/testkit-selftest.png");
    b.set_phone_viewport().await;
    b.screenshot_to(&png).await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
}
