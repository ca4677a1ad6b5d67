//! The `http` benchmark's server side: a real `billing serve` child process on one database, the
//! CPU its process, PostgreSQL's processes and the whole machine use, and the HTTP clients that
//! drive it (reqwest, one keep-alive connection per client).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The line `billing serve` prints once it listens, up to the address.
const LISTENING: &str = "billing serve: listening on http://";

/// How long the server may take to print that line (it migrates the database first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `billing serve`; killed if dropped without [`Server::stop`].
pub(crate) struct Server {
    child: Child,
    /// `http://ADDR`.
    pub(crate) base: String,
    /// Where its stderr goes.
    log: PathBuf,
}

impl Server {
    /// Starts `bin --db URL serve --listen 127.0.0.1:0 --auth-key KEY` and waits for the line
    /// naming its address; its stderr goes to `log`.
    ///
    /// # Errors
    /// The binary cannot be started, or exits or stays silent instead of listening.
    pub(crate) async fn start(
        bin: &Path,
        url: &str,
        key: &Path,
        log: &Path,
    ) -> Result<Self, String> {
        let stderr = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .arg("--db")
            .arg(url)
            // No notice delivery while the slice is timed: the in-process side does none.
            .args(["serve", "--listen", "127.0.0.1:0", "--deliver-every", "0", "--auth-key"])
            .arg(key)
            .env_remove("BILLING_NOW")
            .env_remove("BILLING_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} (build it: cargo build --release -p billing-cli, or give --billing-bin)", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("no stdout of billing serve".into());
        };
        // Reads the banner for the address, then keeps draining stdout so the server never
        // blocks on a full pipe.
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(LISTENING) {
                    if let Some(tx) = found.take() {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let waited = tokio::task::spawn_blocking(move || address.recv_timeout(START_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        let mut server = Self {
            child,
            base: String::new(),
            log: log.to_owned(),
        };
        match waited {
            Ok(addr) if !addr.is_empty() => {
                server.base = format!("http://{addr}");
                Ok(server)
            }
            _ => {
                let status = server.child.try_wait().ok().flatten();
                Err(format!(
                    "billing serve did not report listening within {}s (exit: {status:?}); its stderr: {}",
                    START_TIMEOUT.as_secs(),
                    server.stderr_tail()
                ))
            }
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its stderr.
    pub(crate) fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            tail
        }
    }

    /// Stops the server with SIGTERM (requests in flight finish) and waits for it; kills it
    /// after [`STOP_TIMEOUT`]. Returns the warnings and errors it logged.
    ///
    /// # Errors
    /// It had to be killed, or exited unsuccessfully.
    pub(crate) async fn stop(mut self) -> Result<Vec<String>, String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => {
                    return Err(format!(
                        "billing serve exited with {status}; its stderr: {}",
                        self.stderr_tail()
                    ))
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "billing serve did not stop within {}s of SIGTERM; killed",
                        STOP_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        Ok(text
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("WARN") || l.starts_with("ERROR")
            })
            .map(str::to_owned)
            .collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc` (Linux's `USER_HZ`, 100 on every mainstream kernel).
const TICKS: f64 = 100.0;

/// utime + stime of a `/proc/PID/stat` text, in seconds, and the process name.
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((name, (ticks(11)? + ticks(12)?) / TICKS))
}

/// CPU seconds used so far: this process, the server (if any), every `postgres` process, and
/// the whole machine (busy time summed over all cores).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) own: f64,
    pub(crate) server: f64,
    pub(crate) postgres: f64,
    pub(crate) machine_busy: f64,
    pub(crate) machine_total: f64,
}

impl Cpu {
    /// A sample now.
    pub(crate) fn sample(server: Option<u32>) -> Self {
        let read = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_cpu(&s))
                .map_or(0.0, |(_, cpu)| cpu)
        };
        let mut postgres = 0.0;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                if let Some((comm, cpu)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| stat_cpu(&s))
                {
                    if comm == "postgres" {
                        postgres += cpu;
                    }
                }
            }
        }
        let (machine_busy, machine_total) = machine();
        Self {
            own: read("self"),
            server: server.map_or(0.0, |pid| read(&pid.to_string())),
            postgres,
            machine_busy,
            machine_total,
        }
    }

    /// What was used from `earlier` to `self`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            own: self.own - earlier.own,
            server: self.server - earlier.server,
            postgres: self.postgres - earlier.postgres,
            machine_busy: self.machine_busy - earlier.machine_busy,
            machine_total: self.machine_total - earlier.machine_total,
        }
    }

    /// Adds `other` in.
    pub(crate) fn add(&mut self, other: &Self) {
        self.own += other.own;
        self.server += other.server;
        self.postgres += other.postgres;
        self.machine_busy += other.machine_busy;
        self.machine_total += other.machine_total;
    }
}

/// Busy and total CPU seconds of the machine (first line of `/proc/stat`).
fn machine() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = stat.lines().next() else {
        return (0.0, 0.0);
    };
    // cpu user nice system idle iowait irq softirq steal (guest is inside user).
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return (0.0, 0.0);
    }
    let total: f64 = v.iter().sum();
    let idle = v[3] + v[4];
    ((total - idle) / TICKS, total / TICKS)
}

/// One POST of the flow, built before the slice is timed.
pub(crate) struct Request {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) body: String,
}

/// A workspace's flow over HTTP: its owner's token and the requests in order.
pub(crate) struct HttpWork {
    pub(crate) token: String,
    pub(crate) requests: Vec<Request>,
}

/// What one client saw.
#[derive(Default)]
pub(crate) struct ClientReport {
    /// Commands answered 200.
    pub(crate) ok: usize,
    /// Latency of each, in milliseconds (request sent to body read).
    pub(crate) latencies_ms: Vec<f64>,
    /// Requests not answered 200 (or not answered at all).
    pub(crate) failures: usize,
    /// The first few failures: what was sent and what came back.
    pub(crate) examples: Vec<String>,
}

/// A reqwest client for loopback: no proxy, no Nagle, one kept-alive HTTP/1.1 connection.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Sends every workspace's requests in order on `client`; a workspace whose request fails
/// skips its remaining steps (which would fail too).
pub(crate) async fn drive(client: reqwest::Client, works: Vec<HttpWork>) -> ClientReport {
    let mut report = ClientReport::default();
    for work in works {
        for r in work.requests {
            let start = Instant::now();
            let sent = client
                .post(&r.url)
                .bearer_auth(&work.token)
                .header("idempotency-key", &r.key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(r.body.clone())
                .send()
                .await;
            let outcome = match sent {
                Ok(response) => {
                    let status = response.status();
                    let replayed = response.headers().contains_key("idempotent-replayed");
                    match response.bytes().await {
                        Ok(_) if status == reqwest::StatusCode::OK && !replayed => Ok(()),
                        Ok(body) => Err(format!(
                            "{status}{}: {}",
                            if replayed { " (replayed)" } else { "" },
                            String::from_utf8_lossy(&body[..body.len().min(400)])
                        )),
                        Err(e) => Err(format!("{status}, body unreadable: {e}")),
                    }
                }
                Err(e) => Err(format!("no response: {e}")),
            };
            let ms = start.elapsed().as_secs_f64() * 1e3;
            match outcome {
                Ok(()) => {
                    report.ok += 1;
                    report.latencies_ms.push(ms);
                }
                Err(e) => {
                    report.failures += 1;
                    if report.examples.len() < 3 {
                        report
                            .examples
                            .push(format!("POST {} ({} {}) → {e}", r.url, r.key, r.body));
                    }
                    break;
                }
            }
        }
    }
    report
}
