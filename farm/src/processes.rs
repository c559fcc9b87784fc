//! Worker processes beside an in-process farm (the demo): each one `reelfarm work`, stopped
//! gracefully (SIGTERM, then drain) when the farm is done with them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// Worker processes, stopped gracefully (SIGTERM, then drain) when dropped.
pub struct WorkerProcesses(Vec<Child>);

impl WorkerProcesses {
    /// How many run.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Starts `n` processes of `exe work` (the reelfarm binary) against the coordinator at
    /// `url`, each with its cache under `data`.
    pub fn spawn(
        exe: &Path,
        n: u32,
        url: &str,
        token: &str,
        data: &Path,
    ) -> Result<WorkerProcesses> {
        let mut children = Vec::new();
        for i in 0..n {
            let child = Command::new(exe)
                .arg("work")
                .arg("--coordinator")
                .arg(url)
                .arg("--name")
                .arg(format!("demo-worker-{i}"))
                .arg("--cache")
                .arg(data.join(format!("worker-{i}")))
                .env("REELFARM_JOIN_TOKEN", token)
                .stdin(Stdio::null())
                .spawn()
                .context("starting a worker process")?;
            children.push(child);
        }
        Ok(WorkerProcesses(children))
    }

    /// Asks every worker to drain and waits for them to exit.
    pub fn stop(&mut self) {
        for child in &self.0 {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        self.stop();
    }
}
