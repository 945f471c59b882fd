//! What `tollgate login` keeps: per server, the user and the access and refresh tokens the
//! key manager issued to the CLI's built-in client (never the password), in
//! `$XDG_CONFIG_HOME/tollgate/credentials.json` (else `~/.config/…`), a file only its
//! owner may read (0600, in a 0700 directory), as `gh` and `docker` keep theirs.

use crate::{Failure, exit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;

/// One login: who, and the tokens that prove it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Login {
    /// The user signed in.
    pub user: String,
    /// The access token sent as `Authorization: Bearer`.
    pub access_token: String,
    /// The refresh token that renews it, when the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (seconds since the epoch).
    pub expires_at: i64,
}

/// The whole file: the server commands use by default and a login per server.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Credentials {
    /// The server of the last `tollgate login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Logins by server URL (without a trailing slash).
    #[serde(default)]
    pub servers: BTreeMap<String, Login>,
}

/// A server URL as the file keys it.
pub(crate) fn server_key(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// Where the file lives.
pub(crate) fn path() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Failure::new(
                    exit::CONFIG,
                    "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login; pass --password instead",
                ));
            }
        },
    };
    Ok(base.join("tollgate").join("credentials.json"))
}

impl Credentials {
    /// The file's content; empty when there is no file yet.
    pub(crate) fn load() -> Result<Self, Failure> {
        let path = path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Failure::new(
                    exit::CONFIG,
                    format!(
                        "{} is not a credentials file ({e}); remove it and run `tollgate login` again",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Failure::new(exit::OS, format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Writes the file whole (to a temporary file renamed over it), readable only by its owner.
    pub(crate) fn save(&self) -> Result<(), Failure> {
        let path = path()?;
        let fail =
            |what: &str, e: std::io::Error| Failure::new(exit::OS, format!("cannot {what} {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail("restrict the directory of", e))?;
        }
        let body = serde_json::to_vec_pretty(self).map_err(|e| Failure::new(exit::OTHER, e))?;
        let temporary = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|e| fail("write", e))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail("restrict", e))?;
        file.write_all(&body).map_err(|e| fail("write", e))?;
        file.sync_all().map_err(|e| fail("write", e))?;
        std::fs::rename(&temporary, &path).map_err(|e| fail("write", e))
    }

    /// The server commands talk to when `--server` is absent.
    pub(crate) fn default_server(&self) -> String {
        self.current
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:9443".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_leaves_out_what_is_absent() {
        let mut c = Credentials {
            current: Some("http://h:1".into()),
            ..Default::default()
        };
        c.servers.insert(
            "http://h:1".into(),
            Login {
                user: "alice".into(),
                access_token: "at".into(),
                refresh_token: None,
                expires_at: 10,
            },
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("refreshToken"), "{json}");
        let back: Credentials = serde_json::from_str(&json).unwrap();
        assert_eq!(back.servers["http://h:1"].user, "alice");
        assert_eq!(back.default_server(), "http://h:1");
        assert_eq!(Credentials::default().default_server(), "http://127.0.0.1:9443");
        assert_eq!(server_key(" http://h:1/ "), "http://h:1");
    }
}
