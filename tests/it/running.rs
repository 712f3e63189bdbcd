//! A `walguard run` in the background: its log lines collected as they come,
//! and the signals and measurements the resilience tests need.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::fixture::{Fixture, wait_for_exit};

/// A `walguard run` in the background whose log lines are collected.
pub struct Running {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn start(fixture: &Fixture) -> Running {
        let mut command = fixture.command(&["run"]);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("walguard starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Running { child, log }
    }

    pub fn lines_with(&self, text: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|line| line.contains(text)).cloned().collect()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `text` `times` times.
    pub async fn wait_for_log(&self, text: &str, times: usize, within: Duration) {
        let what = format!("walguard logs `{text}` {times} times");
        let deadline = Instant::now() + within;
        while self.lines_with(text).len() < times {
            if Instant::now() >= deadline {
                panic!("timed out waiting until {what}; log:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed walguard is reaped");
    }

    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        signal(self.child.id(), "-TERM");
        wait_for_exit(&mut self.child, within).await
    }

    /// Peak resident memory (VmHWM) in KiB, while the process runs.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status of a running walguard");
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("a VmHWM line");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM in kB")
    }

    /// Violations written by batches and how many of them were new.
    pub fn batch_totals(&self) -> (u64, u64) {
        batch_totals(&self.log_text())
    }
}

/// Sums the `violations` and `fresh` fields of the "batch written" lines.
pub fn batch_totals(log: &str) -> (u64, u64) {
    let field = |line: &str, name: &str| -> u64 {
        let start = line.find(&format!("{name}=")).map(|at| at + name.len() + 1);
        let digits = start.map(|at| &line[at..]).unwrap_or("");
        digits.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
    };
    let batches = log.lines().filter(|line| line.contains("batch written"));
    batches.fold((0, 0), |(all, fresh), line| {
        (all + field(line, "violations"), fresh + field(line, "fresh"))
    })
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status();
    assert!(status.expect("kill runs").success(), "kill {signal} {pid}");
}
