//! The real `roomsync` binary as a child process, killed the way a deployment loses it: SIGKILL (power loss,
//! OOM killer, `kill -9`), no shutdown code runs, and started again at once with the same configuration.
//!
//! ```text
//!  test --spawn (env: ROOMSYNC__...)--> roomsync run  --stderr--> <dir>/roomsync.log (every incarnation, appended)
//!    \--GET /metrics, /health/ready, /api/status (its admin API)--^
//!    \--kill(): SIGKILL, reaped --> start(): the same command again
//! ```
//! Invariant: at most one incarnation runs at a time, and a killed one is reaped before the next starts, so the
//! restart meets exactly what a supervisor's restart after a crash would meet.
//!
//! A process can also be frozen (SIGSTOP) and thawed (SIGCONT): a VM paused by its host, a process stalled in
//! swap, the zombie that still holds its connections while the rest of the world moves on without it.
//! Shared by the test binaries that run the binary (`#[path = "support/process.rs"] mod process;`); not every
//! one uses every part.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// How long a started process may take to answer on its admin API.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One `roomsync` process (all stages, or the ones named in `args`), restarted as often as it is killed.
pub struct Process {
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    admin: String,
    child: Option<Child>,
    http: reqwest::Client,
    /// SIGKILLs so far.
    pub kills: usize,
}

impl Process {
    /// Starts `roomsync <args>` with `env` (the `ROOMSYNC__...` settings; none are inherited from the test's own
    /// environment) and an admin API on a free port; its stderr goes to `log`.
    pub async fn start(args: &[&str], env: Vec<(String, String)>, log: &Path) -> anyhow::Result<Process> {
        let admin = format!("127.0.0.1:{}", free_port()?);
        let mut env = env;
        env.push(("ROOMSYNC__ADMIN__LISTEN".into(), admin.clone()));
        env.push(("ROOMSYNC__ADMIN__AUTH_DISABLED".into(), "true".into()));
        let mut process = Process {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            log: log.to_owned(),
            admin,
            child: None,
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
            kills: 0,
        };
        process.spawn().await?;
        Ok(process)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_roomsync"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ROOMSYNC") {
                command.env_remove(name);
            }
        }
        let filter = std::env::var("ROOMSYNC_CHILD_LOG").unwrap_or_else(|_| "info".to_owned());
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the roomsync binary")?;
        self.child = Some(child);
        let url = format!("http://{}/health/live", self.admin);
        let http = self.http.clone();
        let ready = testkit::wait_until("roomsync's admin API to answer", READY_TIMEOUT, || {
            let (url, http) = (url.clone(), http.clone());
            async move { Ok(http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())) }
        })
        .await;
        if let Err(error) = ready {
            // A process that never answered (it exited during its start, say while PostgreSQL was down) is not
            // kept: else `restart` would find it "still running" and refuse for ever.
            if let Some(mut child) = self.child.take() {
                let _ = child.kill().await;
            }
            return Err(error.context(format!("roomsync did not start; see {}", self.log.display())));
        }
        Ok(())
    }

    /// SIGKILLs the process (no shutdown code runs) and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("roomsync is not running (it exited by itself)") };
        if let Some(status) = child.try_wait()? {
            bail!("roomsync had already exited ({status}) before it was killed; see {}", self.log.display());
        }
        child.kill().await.context("killing roomsync")?;
        self.kills += 1;
        Ok(())
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets and locks but runs no code until [`Process::thaw`].
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Lets a frozen process run on (SIGCONT) from exactly where it stopped.
    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        let pid = self.pid().context("roomsync is not running")?;
        let pid = libc::pid_t::try_from(pid)?;
        // SAFETY: kill(2) on our own child's pid, which is not reaped while `self.child` holds it.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("signal {signal} to {pid}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Starts the same command again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("roomsync is still running");
        }
        self.spawn().await
    }

    /// Waits until the process exits by itself and reaps it (pends for ever while none runs). Cancel safe: a
    /// kill may come first.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let Some(child) = self.child.as_mut() else { return std::future::pending().await };
        match child.wait().await {
            Ok(status) => {
                self.child = None;
                status
            }
            // The process cannot be waited for: take it as gone, so the supervisor starts another.
            Err(_) => {
                self.child = None;
                std::process::ExitStatus::default()
            }
        }
    }

    /// Fails when the process exited by itself (a stage failed; `roomsync run` then stops with its error).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut().map(Child::try_wait).transpose()? {
            Some(Some(status)) => bail!("roomsync exited by itself ({status}); see {}", self.log.display()),
            Some(None) => Ok(()),
            None => bail!("roomsync is not running"),
        }
    }

    /// The admin API's answer to `GET path` (status and body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = self.http.get(format!("http://{}{path}", self.admin)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// The sum of a Prometheus metric's samples (every label set) as the process exports it now; 0 when absent.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let (_, text) = self.get("/metrics").await?;
        Ok(sum_of(&text, name))
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id of the running incarnation, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Where the log is.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

/// A free TCP port on the loopback interface (free when asked; taken by whoever binds it first).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The sum of the samples of `name` in a Prometheus text exposition.
pub fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    // Named in full: a benchmark binary (harness = false) compiles this module without running its tests.
    #[test]
    fn samples_of_one_metric_are_summed_over_labels() {
        let text = "# TYPE a_total counter\na_total{t=\"x\"} 2\na_total{t=\"y\"} 3\na_total_other 9\nb 1\n";
        assert_eq!(super::sum_of(text, "a_total"), 5.0);
        assert_eq!(super::sum_of(text, "b"), 1.0);
        assert_eq!(super::sum_of(text, "c"), 0.0);
    }
}
