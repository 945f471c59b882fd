//! A real headless Chromium for portal tests, driven over WebDriver (chromedriver +
//! fantoccini). Without Debian's `chromium` and `chromium-driver` the tests are skipped
//! with a printed reason, unless `REQUIRE_BROWSER=1` (set by CI), where that is a failure.
//! The helpers panic with the page's URL and visible text, so a failed step says where
//! the browser was and what it saw.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a step waits for an element or a text. Longer than a person would wait: the
/// tests share two cores with compilers.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Chromium's flags, besides its binary and a fresh profile directory.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
];

/// A running chromedriver with one headless Chromium session. Dropping it ends the
/// session and stops chromedriver and every Chromium process it started.
pub struct Browser {
    /// The WebDriver session, for anything the helpers below do not cover.
    pub client: Client,
    driver: Child,
    driver_pid: u32,
    port: u16,
    session: Option<String>,
    dir: tempfile::TempDir,
}

fn required() -> bool {
    std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1" || v == "true")
}

/// The executable named by `var`, else `default`; the reason when it is not there.
fn find(var: &str, default: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found (set {var} to use another)", path.display()))
    }
}

impl Browser {
    /// Starts chromedriver (`CHROMEDRIVER`, default `/usr/bin/chromedriver`) and a headless
    /// Chromium (`CHROMIUM`, default `/usr/bin/chromium`) with a fresh profile. `None`, with
    /// the reason printed, when either is missing, unless `REQUIRE_BROWSER` is set, where
    /// that panics. Panics if they are there but do not start.
    pub async fn start() -> Option<Browser> {
        let (driver, chromium) = match (
            find("CHROMEDRIVER", "/usr/bin/chromedriver"),
            find("CHROMIUM", "/usr/bin/chromium"),
        ) {
            (Ok(d), Ok(c)) => (d, c),
            (d, c) => {
                let reason = [d.err(), c.err()].into_iter().flatten().collect::<Vec<_>>().join("; ");
                if required() {
                    panic!("REQUIRE_BROWSER is set but {reason} (apt-get install chromium chromium-driver)");
                }
                eprintln!("[browser] SKIPPED: {reason} (apt-get install chromium chromium-driver)");
                return None;
            }
        };
        let started = Instant::now();
        // The WebDriver client is built with rustls and needs the process's crypto provider.
        crate::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("tollgate-browser-")
            .tempdir()
            .unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let log_path = dir.path().join("chromedriver.log");
        let log =
            std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let port = crate::free_port();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("log file: {e}")))
            .stderr(log)
            // Its own process group, which Chromium inherits, so that drop can stop them all.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let driver_pid = child.id().unwrap_or_else(|| panic!("chromedriver exited at once"));
        let log_tail = || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let skip = log.chars().count().saturating_sub(2000);
            format!(
                "chromedriver's log ({}):\n{}",
                log_path.display(),
                log.chars().skip(skip).collect::<String>()
            )
        };

        let url = format!("http://127.0.0.1:{port}");
        let http = crate::http();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && let Ok(status) = r.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            if let Ok(Some(exit)) = child.try_wait() {
                panic!(
                    "chromedriver exited with {exit} before answering /status; {}",
                    log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!("chromedriver not ready on {url}/status within 20 s; {}", log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", dir.path().join("profile").display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let client = match ClientBuilder::rustls()
            .unwrap_or_else(|e| panic!("no TLS for the WebDriver client: {e}"))
            .capabilities(caps)
            .connect(&url)
            .await
        {
            Ok(c) => c,
            Err(e) => panic!("chromedriver did not open a Chromium session: {e}; {}", log_tail()),
        };
        let session = client.session_id().await.ok().flatten();
        eprintln!(
            "[browser] headless {} through {} ready in {:.1?}",
            chromium.display(),
            driver.display(),
            started.elapsed()
        );
        Some(Browser {
            client,
            driver: child,
            driver_pid,
            port,
            session,
            dir,
        })
    }

    /// Where the browser is and the first 2000 characters of what it shows, for failure
    /// messages.
    pub async fn whereabouts(&self) -> String {
        let url = self.url().await;
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let text: String = text.chars().take(2000).collect();
        format!("at {url}, the page shows:\n{text}")
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("cannot open {url}: {e}");
        }
    }

    /// Waits up to [`STEP_TIMEOUT`] for the element `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element `{css}` within {STEP_TIMEOUT:?}, {}",
                    self.whereabouts().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces the value of the input `css` with `text` (clears it, then types).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait_for(css).await;
        if let Err(err) = e.clear().await {
            panic!("cannot clear `{css}`: {err}, {}", self.whereabouts().await);
        }
        if let Err(err) = e.send_keys(text).await {
            panic!("cannot type into `{css}`: {err}, {}", self.whereabouts().await);
        }
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let e = self.wait_for(css).await;
        if let Err(err) = e.click().await {
            panic!("cannot click `{css}`: {err}, {}", self.whereabouts().await);
        }
    }

    /// Chooses the option whose visible text is `label` in the select `css`.
    pub async fn select_by_label(&self, css: &str, label: &str) {
        let e = self.wait_for(css).await;
        if let Err(err) = e.select_by_label(label).await {
            panic!("no option `{label}` in `{css}`: {err}, {}", self.whereabouts().await);
        }
    }

    /// The visible text of the element `css`.
    /// An element found just before the page navigates goes stale; it is found again on
    /// the new page until [`STEP_TIMEOUT`].
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let e = self.wait_for(css).await;
            match e.text().await {
                Ok(t) => return t,
                Err(err) if Instant::now() > deadline => {
                    panic!("cannot read the text of `{css}`: {err}, {}", self.whereabouts().await)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The current value of the input `css` (what the user typed or the page filled in),
    /// found again if the page navigates meanwhile.
    pub async fn value_of(&self, css: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let e = self.wait_for(css).await;
            match e.prop("value").await {
                Ok(v) => return v.unwrap_or_default(),
                Err(err) if Instant::now() > deadline => {
                    panic!("cannot read the value of `{css}`: {err}, {}", self.whereabouts().await)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.text_of("body").await
    }

    /// Signs in through the portals' sign-in page, going on to `next`, and waits until the
    /// header names the user (`admin`, `admin@acme.com`).
    pub async fn sign_in_to_portals(&self, base: &str, next: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/portals/sign-in?next={next}")).await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("button[type=submit]").await;
        self.wait_for_text(&format!("Signed in as {user}")).await;
    }

    /// Signs out with the header's button and waits for the sign-in link.
    pub async fn sign_out_of_portals(&self) {
        self.click("form[action='/portals/sign-out'] button").await;
        self.wait_for("#sign-in").await;
    }

    /// Waits up to [`STEP_TIMEOUT`] until the page's visible text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if self.page_text().await.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!("the page never showed `{needle}`, {}", self.whereabouts().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current URL (empty if the browser cannot say).
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Resizes the window; 1280×900 at start.
    pub async fn resize(&self, width: u32, height: u32) {
        if let Err(e) = self.client.set_window_size(width, height).await {
            panic!("cannot resize the window to {width}×{height}: {e}");
        }
    }

    /// Resizes the window to a phone's, 390×844, for a phone screenshot.
    pub async fn set_phone_viewport(&self) {
        self.resize(390, 844).await;
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot_to(&self, path: &Path) {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("cannot take a screenshot: {e}, {}", self.whereabouts().await),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Saves a PNG of the viewport to `docs/screenshots/{name}.png` in the workspace (the
    /// portals guide, docs/portals.md, shows them).
    pub async fn screenshot(&self, name: &str) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        self.screenshot_to(&root.join("docs/screenshots").join(format!("{name}.png")))
            .await;
    }

    /// Where chromedriver's log is, which says why a session failed.
    pub fn driver_log(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    /// Ends the session now (dropping the fixture does the same, synchronously).
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.session = None;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // fantoccini would end the session from a task once every `Client` is gone, but that
        // task may never run (the test's runtime is shutting down) and chromedriver is killed
        // below; Chromium would outlive it. So end the session here, without the runtime.
        if let Some(id) = self.session.take()
            && let Err(e) = delete_session(self.port, &id)
        {
            eprintln!("[browser] could not end the WebDriver session: {e}");
        }
        if let Ok(pgid) = i32::try_from(self.driver_pid) {
            // chromedriver has not been reaped yet, so its pid (the group's id) is still ours.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.driver.start_kill();
        // Reap it now: the runtime that would do it later may be gone when the test ends,
        // leaving a zombie with a parent that does not reap (a container's init).
        for _ in 0..100 {
            if !matches!(self.driver.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `DELETE /session/{id}` on chromedriver, which quits Chromium before it answers.
fn delete_session(port: u16, id: &str) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // One read: chromedriver keeps the connection open after its answer.
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer[..n]);
    if answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(
            answer.lines().next().unwrap_or("no answer").to_string(),
        ))
    }
}
