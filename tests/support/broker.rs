//! A test's or benchmark's own Kafka broker: a tansu process on a free loopback port with its own, fresh storage
//! directory, so the chaos test can kill and restart it without disturbing the shared stack's broker or other
//! tests, and a benchmark measures a broker that holds only its own records (tansu 0.6.0's sqlite storage gets
//! slower as it fills: benches/README.md).
//! Shared by the binaries that run a broker (`#[path = "support/broker.rs"] mod broker;`, beside `mod process;`);
//! not every one uses every part.
//!
//! Every start gives the storage the header index tansu lacks (`index_headers`), as the stack's broker has it.
//!
//! Invariant: the broker always comes back on the same port with the same storage, like a broker process that
//! crashed and was restarted by its supervisor; records it acknowledged before the kill are still there.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use testkit::{unique_name, wait_until};
use tokio::process::{Child, Command};

use super::process::free_port;

/// How long a (re)started broker may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A tansu broker owned by one test or benchmark run.
pub struct Broker {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// How often it has been killed and restarted.
    pub restarts: usize,
}

/// The tansu binary: `ROOMSYNC_TANSU`, then `tansu` on PATH, then where `scripts/stack install` puts it.
pub fn tansu_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ROOMSYNC_TANSU") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("tansu")).collect::<Vec<_>>())
        .unwrap_or_default();
    let cached = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/roomsync/tools/bin/tansu"));
    on_path.into_iter().chain(cached).find(|p| p.is_file()).context(
        "no tansu binary: set ROOMSYNC_TANSU, put tansu on PATH or run scripts/stack install (the chaos test and \
         the pipeline benchmark run a broker of their own)",
    )
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Broker> {
        let dir = std::env::temp_dir().join(unique_name("roomsync_broker"));
        std::fs::create_dir_all(&dir)?;
        let mut broker = Broker { binary: tansu_binary()?, dir, port: free_port()?, child: None, restarts: 0 };
        broker.spawn().await?;
        Ok(broker)
    }

    /// `host:port` for the Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // tansu takes the sqlite path relative to its working directory (see scripts/stack).
        let child = Command::new(&self.binary)
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("broker.log"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let address = self.bootstrap();
        wait_until("the test broker to accept connections", READY_TIMEOUT, || {
            let address = address.clone();
            async move { Ok(tokio::net::TcpStream::connect(address).await.ok().map(|_| ())) }
        })
        .await?;
        index_headers(&self.dir).await
    }

    /// Kills the broker (SIGKILL: a crash, not a clean stop), keeps it down for `down`, and starts it again.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { bail!("the broker is not running") };
        child.kill().await.context("killing the broker")?;
        self.restarts += 1;
        tokio::time::sleep(down).await;
        self.spawn().await
    }
}

/// Gives the storage in `dir` the index on record headers tansu 0.6.0 lacks, which makes each fetched record scan
/// every stored header (`scripts/stack`, `index_broker`, says why; it is the one home of that index).
async fn index_headers(dir: &Path) -> anyhow::Result<()> {
    let stack = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack");
    let status = Command::new(stack).arg("broker-index").arg(dir).status().await.context("running scripts/stack")?;
    anyhow::ensure!(status.success(), "scripts/stack broker-index {} failed: {status}", dir.display());
    Ok(())
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
