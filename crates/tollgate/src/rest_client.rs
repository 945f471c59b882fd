//! The CLI's REST client: one control plane, one user, and error lines that carry the
//! server's own code, description and fix. Credentials, first found wins: `--password`,
//! TOLLGATE_ADMIN_PASSWORD, the token `tollgate login` kept for the server (renewed with
//! its refresh token when it has expired), the data directory's `admin-password`.

use crate::cli::{ConnectionArgs, Output};
use crate::credentials::{self, Credentials, Login};
use crate::{Failure, exit};
use serde_json::Value;
use tollgate_tokens::cli_client::CLI_CLIENT_ID;

/// How requests prove who sends them.
enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
    Anonymous,
}

/// A REST client for one control plane and user.
pub(crate) struct Client {
    server: String,
    base: String,
    auth: Auth,
    pub(crate) http: reqwest::Client,
}

/// The user a command acts as when `--user` is absent and nobody is logged in.
const DEFAULT_USER: &str = "admin";

/// Seconds before its expiry that a kept token is renewed rather than sent.
const RENEW_MARGIN: i64 = 30;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn http_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot build an HTTP client: {e}")))
}

fn unreachable(server: &str, e: reqwest::Error) -> Failure {
    Failure::new(
        exit::UNAVAILABLE,
        format!("cannot reach {server}: {e}; is a control plane running there? (--server)"),
    )
}

impl Client {
    /// A client for the REST API under `base_path` (`/api/am/publisher/v4`…) with the
    /// first credentials found (see the module's doc).
    pub(crate) async fn connect(args: &ConnectionArgs, base_path: &str) -> Result<Self, Failure> {
        // A damaged credentials file matters only when nothing else gives credentials.
        let kept = Credentials::load();
        let server = match &args.server {
            Some(s) => credentials::server_key(s),
            None => kept
                .as_ref()
                .map(Credentials::default_server)
                .unwrap_or_else(|_| Credentials::default().default_server()),
        };
        let http = http_client()?;
        let user = || args.user.clone().unwrap_or_else(|| DEFAULT_USER.to_string());
        let env_password = std::env::var("TOLLGATE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
        let auth = if let Some(password) = args.password.clone().or(env_password) {
            Auth::Basic { user: user(), password }
        } else if let Some(login) = kept
            .as_ref()
            .ok()
            .and_then(|c| c.servers.get(&server))
            .filter(|l| args.user.as_ref().is_none_or(|u| *u == l.user))
        {
            Auth::Bearer(fresh_token(&http, &server, login).await?)
        } else {
            kept?;
            let file = args.data_dir.join("admin-password");
            let password = std::fs::read_to_string(&file).map(|s| s.trim().to_string()).map_err(|_| {
                Failure::new(
                    exit::CONFIG,
                    format!(
                        "not logged in to {server} as {}: run `tollgate login --server {server} --user {}`, pass --password, or run from the directory whose {} holds the admin password",
                        user(),
                        user(),
                        file.display()
                    ),
                )
            })?;
            Auth::Basic { user: user(), password }
        };
        Ok(Self {
            base: format!("{server}{base_path}"),
            server,
            auth,
            http,
        })
    }

    /// A client that sends no credentials (self sign-up).
    pub(crate) fn anonymous(server: Option<&str>, base_path: &str) -> Result<Self, Failure> {
        let server = match server {
            Some(s) => credentials::server_key(s),
            None => Credentials::load().unwrap_or_default().default_server(),
        };
        Ok(Self {
            base: format!("{server}{base_path}"),
            server,
            auth: Auth::Anonymous,
            http: http_client()?,
        })
    }

    /// Sends with the user's credentials; the body on success, one readable error line
    /// (the status, the server's code and description or field errors) otherwise.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = self.send_raw(req).await?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// Sends with the user's credentials; the body's bytes on success (a download).
    pub(crate) async fn download(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, Failure> {
        let response = self.send_raw(req).await?;
        let bytes = response.bytes().await.map_err(|e| unreachable(&self.server, e))?;
        Ok(bytes.to_vec())
    }

    /// Sends with the user's credentials; the response on success, the refusal as one
    /// error line otherwise.
    async fn send_raw(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let req = match &self.auth {
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Anonymous => req,
        };
        let response = req.send().await.map_err(|e| unreachable(&self.server, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let mut message = body["description"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or("no description")
            .to_string();
        if let Some(errors) = body["error"].as_array()
            && !errors.is_empty()
        {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            message = fields.join("; ");
        }
        let code = match &body["code"] {
            Value::Number(n) => format!(", code {n}"),
            Value::String(s) if !s.is_empty() => format!(", code {s}"),
            _ => String::new(),
        };
        if status == reqwest::StatusCode::UNAUTHORIZED && matches!(self.auth, Auth::Bearer(_)) {
            message.push_str(&format!(
                "; the login kept for {} is no longer valid: run `tollgate login` again",
                self.server
            ));
        }
        Err(Failure::new(
            exit::OTHER,
            format!("the server refused the request ({status}{code}): {message}"),
        ))
    }

    /// The URL of `path` under the API's base.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The kept access token, renewed first (and the renewal kept) when it has expired.
async fn fresh_token(http: &reqwest::Client, server: &str, login: &Login) -> Result<String, Failure> {
    if login.expires_at > now() + RENEW_MARGIN {
        return Ok(login.access_token.clone());
    }
    let expired = || {
        Failure::new(
            exit::CONFIG,
            format!(
                "your login to {server} as {} has expired: run `tollgate login --server {server} --user {}` again",
                login.user, login.user
            ),
        )
    };
    let refresh = login.refresh_token.as_deref().ok_or_else(expired)?;
    let renewed = request_token(
        http,
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLI_CLIENT_ID),
        ],
        &login.user,
    )
    .await
    .map_err(|_| expired())?;
    let token = renewed.access_token.clone();
    let mut all = Credentials::load()?;
    all.servers.insert(server.to_string(), renewed);
    all.save()?;
    Ok(token)
}

/// Asks the key manager at `server` for a token for the CLI's client.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    server: &str,
    form: &[(&str, &str)],
    user: &str,
) -> Result<Login, Failure> {
    let response = http
        .post(format!("{server}/oauth2/token"))
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(server, e))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(Failure::new(
            exit::OTHER,
            format!(
                "the server refused the sign-in ({status}, {}): {}",
                body["error"].as_str().unwrap_or("no error code"),
                body["error_description"].as_str().unwrap_or("no description")
            ),
        ));
    }
    let access_token = body["access_token"]
        .as_str()
        .ok_or_else(|| Failure::new(exit::OTHER, "the server's token answer holds no access_token"))?;
    Ok(Login {
        user: user.to_string(),
        access_token: access_token.to_string(),
        refresh_token: body["refresh_token"].as_str().map(String::from),
        expires_at: now() + body["expires_in"].as_i64().unwrap_or(3600),
    })
}

/// Prints one line of a command's result on stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn say(line: &str) {
    println!("{line}");
}

/// Prints one step of a longer command: on stdout for people, on stderr under `-o json`
/// so that stdout holds the JSON alone.
pub(crate) fn step(output: Output, line: &str) {
    match output {
        Output::Text => say(line),
        Output::Json => eprintln!("{line}"),
    }
}

/// Prints a command's result: the REST body under `-o json`, else the text lines.
pub(crate) fn emit(output: Output, body: &Value, text: impl FnOnce()) {
    match output {
        Output::Json => say(&serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())),
        Output::Text => text(),
    }
}
