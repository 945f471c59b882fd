//! The CLI's REST client: one control plane, one user (Basic credentials from
//! `--password`, `TOLLGATE_ADMIN_PASSWORD` or the data directory's `admin-password`), and
//! error lines that carry the server's own description.

use crate::cli::ConnectionArgs;
use crate::{Failure, exit};
use serde_json::Value;

/// A REST client for one control plane and user.
pub(crate) struct Client {
    base: String,
    user: String,
    password: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    /// A client for the REST API under `base_path` (`/api/am/publisher/v4`…).
    pub(crate) fn new(args: &ConnectionArgs, base_path: &str) -> Result<Self, Failure> {
        let password = match (&args.password, std::env::var("TOLLGATE_ADMIN_PASSWORD")) {
            (Some(p), _) => p.clone(),
            (None, Ok(p)) if !p.is_empty() => p,
            _ => {
                let file = args.data_dir.join("admin-password");
                std::fs::read_to_string(&file).map(|s| s.trim().to_string()).map_err(|_| {
                    Failure::new(
                        exit::CONFIG,
                        format!(
                            "no password: pass --password, set TOLLGATE_ADMIN_PASSWORD, or run from the directory whose {} holds it",
                            file.display()
                        ),
                    )
                })?
            }
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::new(exit::OTHER, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: format!("{}{base_path}", args.server.trim_end_matches('/')),
            user: args.user.clone(),
            password,
            http,
        })
    }

    /// Sends with the user's credentials; the body on success, one readable error line
    /// (with the server's field errors) otherwise.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = req
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| {
                Failure::new(
                    exit::UNAVAILABLE,
                    format!(
                        "cannot reach {}: {e}; is a control plane running there? (--server)",
                        self.base
                    ),
                )
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let mut message = body["description"].as_str().unwrap_or("no description").to_string();
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
        Err(Failure::new(
            exit::OTHER,
            format!("the server refused the request ({status}): {message}"),
        ))
    }

    /// The URL of `path` under the API's base.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Prints one line of a command's result on stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn say(line: &str) {
    println!("{line}");
}
