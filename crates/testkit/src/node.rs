//! Drives real `tollgate` processes. Every listener defaults to `127.0.0.1:0`, and the
//! node's JSON log lines (`Listener bound.` with `listener` and `addr` fields) tell the
//! test where each one ended up, so tests never race for ports.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to start a node.
pub struct NodeBuilder {
    bin: PathBuf,
    args: Vec<String>,
    env: HashMap<String, String>,
    data_dir: Option<PathBuf>,
    config: Option<String>,
}

/// A running (or exited) `tollgate` process.
pub struct Node {
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    _config: Option<tempfile::NamedTempFile>,
    exit: Option<ExitStatus>,
}

impl NodeBuilder {
    /// A node of the binary at `bin` (`env!("CARGO_BIN_EXE_tollgate")`), running `serve`
    /// with every listener on an ephemeral loopback port and a throwaway data directory.
    pub fn serve(bin: impl AsRef<Path>) -> Self {
        let mut env = HashMap::new();
        for (k, v) in [
            ("TOLLGATE_MANAGEMENT__LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_GATEWAY__LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_TRAFFIC_MANAGER__LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_ADMIN_PASSWORD", "test-admin-password"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        Self {
            bin: bin.as_ref().to_path_buf(),
            args: vec!["serve".into(), "--log-format".into(), "json".into()],
            env,
            data_dir: None,
            config: None,
        }
    }

    /// A node running an arbitrary subcommand (`migrate`, `config default`).
    pub fn command(bin: impl AsRef<Path>, args: &[&str]) -> Self {
        let mut b = Self::serve(bin);
        b.args = args.iter().map(|s| s.to_string()).collect();
        b
    }

    /// Adds command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Sets an environment variable (later calls win).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.insert(key.to_string(), value.into());
        self
    }

    /// Removes an environment variable the builder would otherwise set.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Uses this data directory instead of a throwaway one.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Writes `toml` to a temporary file and passes it with `--config`.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    /// Starts the process; its stdout and stderr lines are collected for the test.
    pub fn spawn(self) -> Node {
        let (tmp, data_dir) = match self.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("tollgate-node-")
                    .tempdir()
                    .expect("temp dir");
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args);
        let config_file = self.config.map(|text| {
            let f = tempfile::Builder::new()
                .suffix(".toml")
                .tempfile()
                .expect("temp config");
            std::fs::write(f.path(), text).expect("write config");
            cmd.arg("--config").arg(f.path());
            f
        });
        // The test's own environment must not leak configuration into the node.
        for (k, _) in std::env::vars() {
            if k.starts_with("TOLLGATE_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("TOLLGATE_NODE__DATA_DIR", &data_dir);
        cmd.envs(&self.env);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tollgate");
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let (lock, cv) = &*lines;
                    lock.lock().unwrap().push(line);
                    cv.notify_all();
                }
            });
        }
        Node {
            child,
            lines,
            data_dir,
            _tmp: tmp,
            _config: config_file,
            exit: None,
        }
    }
}

impl Node {
    /// Every line the process has written so far (stdout and stderr interleaved).
    pub fn output(&self) -> String {
        self.lines.0.lock().unwrap().join("\n")
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a line satisfies `pred`, or the process exits, or `timeout` passes.
    pub fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.lines;
        let mut guard = lock.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if self.exit.is_none()
                && let Ok(Some(status)) = self.child.try_wait()
            {
                self.exit = Some(status);
            }
            if self.exit.is_some() {
                // Let the reader threads drain what is left, then look once more.
                drop(guard);
                std::thread::sleep(Duration::from_millis(100));
                guard = lock.lock().unwrap();
                return guard.iter().find(|l| pred(l)).cloned();
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            guard = cv.wait_timeout(guard, wait).unwrap().0;
        }
    }

    /// The address the named listener (`management`, `gateway`, `gateway-tls`,
    /// `traffic-manager`) bound, read from the node's log. Panics with the node's output
    /// if it does not appear within 60 s.
    pub fn listener(&mut self, name: &str) -> SocketAddr {
        let found = self.wait_for_line(Duration::from_secs(60), |l| listener_addr(l, name).is_some());
        match found.and_then(|l| listener_addr(&l, name)) {
            Some(addr) => addr,
            None => panic!("listener `{name}` never bound; output:\n{}", self.output()),
        }
    }

    /// Polls `GET /health/ready` on the management listener until it answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> SocketAddr {
        let addr = self.listener("management");
        let client = crate::http();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = client.get(format!("http://{addr}/health/ready")).send().await
                && r.status() == 200
            {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "node exited with {status} before becoming ready; output:\n{}",
                    self.output()
                );
            }
            if Instant::now() > deadline {
                panic!("node not ready within {timeout:?}; output:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's peak resident memory so far, in kB (`VmHWM` of `/proc/PID/status`).
    pub fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in the process status")
    }

    /// Sends a signal (`nix::sys::signal::Signal::SIGTERM`…).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        nix::sys::signal::kill(pid, signal).expect("send signal");
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exit {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                // Give the reader threads a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("node did not exit within {timeout:?}; output:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `{"fields":{"message":"Listener bound.","listener":NAME,"addr":ADDR}}`.
fn listener_addr(line: &str, name: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "Listener bound." || fields.get("listener")?.as_str()? != name {
        return None;
    }
    fields.get("addr")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listener_lines() {
        let line = r#"{"timestamp":"x","level":"INFO","fields":{"message":"Listener bound.","listener":"gateway","addr":"127.0.0.1:4000"},"target":"t"}"#;
        assert_eq!(listener_addr(line, "gateway"), Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(listener_addr(line, "management"), None);
        assert_eq!(listener_addr("plain text", "gateway"), None);
    }
}
