//! `billing token issue` and `billing serve`: the tokens' claims and refusals, and a server that
//! answers on loopback, writes to the `--db` store, seeds the demo and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::harness::{billing, Store};

fn key_file(store: &Store) -> String {
    let path = store.path("key.bin");
    std::fs::write(&path, b"0123456789abcdef0123456789abcdef\n").unwrap();
    path.display().to_string()
}

fn claims(token: &str) -> Value {
    let payload = token
        .trim()
        .split('.')
        .nth(1)
        .expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn token_issue_signs_the_claims_it_is_given() {
    let store = Store::new();
    let key = key_file(&store);
    let run = billing(&[
        "token",
        "issue",
        "--auth-key",
        &key,
        "--actor",
        "alice",
        "--workspace",
        "acme",
        "--role",
        "member",
        "--ttl",
        "90m",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let c = claims(&run.stdout);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["workspaces"]["acme"], "member");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        90 * 60
    );
    assert!(c.get("scope").is_none());

    let run = billing(&[
        "token",
        "issue",
        "--auth-key",
        &key,
        "--actor",
        "billing",
        "--system",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let c = claims(&run.stdout);
    assert_eq!(c["scope"], "billing-system");
    assert!(c.get("workspaces").is_none());
}

#[test]
fn token_issue_refuses_what_it_cannot_sign() {
    let store = Store::new();
    let key = key_file(&store);
    let no_key = billing(&["token", "issue", "--actor", "a", "--system"]);
    assert_eq!(no_key.code, 2, "{no_key:?}");
    assert!(no_key.stderr.contains("--auth-key"), "{no_key:?}");

    let short = store.path("short.bin");
    std::fs::write(&short, b"too short").unwrap();
    let run = billing(&[
        "token",
        "issue",
        "--auth-key",
        short.to_str().unwrap(),
        "--actor",
        "a",
        "--system",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("9 bytes"), "{run:?}");

    for ttl in ["1w", "0h", "h", "400d", "1.5h"] {
        let run = billing(&[
            "token",
            "issue",
            "--auth-key",
            &key,
            "--actor",
            "a",
            "--system",
            "--ttl",
            ttl,
        ]);
        assert_eq!(run.code, 2, "--ttl {ttl}: {run:?}");
        assert!(run.stderr.contains("ttl"), "--ttl {ttl}: {run:?}");
    }
    let run = billing(&[
        "token",
        "issue",
        "--auth-key",
        &key,
        "--actor",
        "bad actor",
        "--workspace",
        "acme",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("actor"), "{run:?}");
}

/// A running `billing serve` and the address it printed.
struct Server {
    child: Child,
    /// The rest of its stdout (kept open: it prints when it stops).
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
    address: String,
    banner: String,
}

impl Server {
    fn start(store: &Store, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_billing"))
            .args(["--db", &store.url, "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("BILLING_AUTH_KEY_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        let mut address = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.strip_prefix("billing serve: listening on http://") {
                address = rest.split(' ').next().map(str::to_owned);
            }
            if line.starts_with("Stop with") {
                break;
            }
        }
        let address = address.unwrap_or_else(|| panic!("no address printed: {banner}"));
        Self {
            child,
            out: lines,
            address,
            banner,
        }
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    /// SIGTERM, then the exit status and what it printed after the banner.
    fn stop(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let rest: String = self
            .out
            .by_ref()
            .map_while(Result::ok)
            .map(|l| l + "\n")
            .collect();
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), rest)
    }
}

#[test]
fn serve_answers_writes_to_the_store_and_stops_on_sigterm() {
    let store = Store::new();
    let key = key_file(&store);
    let token = billing(&[
        "token",
        "issue",
        "--auth-key",
        &key,
        "--actor",
        "alice",
        "--workspace",
        "acme",
        "--role",
        "owner",
    ]);
    assert_eq!(token.code, 0, "{token:?}");
    let bearer = format!("Bearer {}", token.stdout.trim());
    let server = Server::start(&store, &["--auth-key", &key]);
    assert!(server.banner.contains("/openapi.json"), "{}", server.banner);
    assert!(
        !server.banner.contains("sign-in?token="),
        "{}",
        server.banner
    );

    let (status, doc) = server.request("GET", "/openapi.json", &[], "");
    assert_eq!(status, 200);
    assert!(doc.contains("\"openapi\":\"3.1"), "{doc}");
    let (status, body) = server.request(
        "POST",
        "/v1/workspaces/acme/upgrade",
        &[
            ("Authorization", &bearer),
            ("Idempotency-Key", "serve-1"),
            ("Content-Type", "application/json"),
        ],
        r#"{"site":"us1"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"upgrade_step\":\"requested\""), "{body}");
    let (status, body) = server.request("GET", "/v1/workspaces/acme", &[], "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing-token"), "{body}");
    // A token signed with another key is refused, whatever it claims.
    let other = store.path("other.bin");
    std::fs::write(&other, [7u8; 32]).unwrap();
    let forged = billing(&[
        "token",
        "issue",
        "--auth-key",
        other.to_str().unwrap(),
        "--actor",
        "mallory",
        "--workspace",
        "acme",
        "--role",
        "owner",
    ]);
    let (status, body) = server.request(
        "GET",
        "/v1/workspaces/acme",
        &[("Authorization", &format!("Bearer {}", forged.stdout.trim()))],
        "",
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid-token"), "{body}");

    let (code, rest) = server.stop();
    assert_eq!(code, 0, "{rest}");
    assert!(rest.contains("stopped"), "{rest}");
    let show = store.expect(0, &["--json", "show", "--workspace", "acme"]);
    assert_eq!(show.json()["upgrade_step"], "requested");
}

#[test]
fn serve_demo_seeds_the_outside_systems_and_prints_sign_in_links() {
    let store = Store::new();
    let server = Server::start(&store, &["--demo"]);
    let links: Vec<&str> = server
        .banner
        .lines()
        .filter(|l| l.contains("/sign-in?token="))
        .collect();
    assert_eq!(links.len(), 2, "{}", server.banner);
    let owner = links[0].trim().split("token=").nth(1).unwrap();
    assert_eq!(claims(owner)["workspaces"]["demo"], "owner");
    let member = links[1].trim().split("token=").nth(1).unwrap();
    assert_eq!(claims(member)["workspaces"]["demo"], "member");
    // The sign-in link signs the browser in: a session cookie and a redirect to the console.
    let path = links[0].trim().split_once(&server.address).unwrap().1;
    let (status, _) = server.request("GET", path, &[], "");
    assert_eq!(status, 303);
    let (code, _) = server.stop();
    assert_eq!(code, 0);
    // The demo account exists, and the demo AWS account is subscribed.
    store.expect(0, &["upgrade", "--workspace", "demo", "--site", "us1"]);
    store.expect(
        0,
        &[
            "account",
            "bind",
            "--workspace",
            "demo",
            "--username",
            "demo-finance",
        ],
    );
    store.expect(
        0,
        &[
            "agreement",
            "accept",
            "--workspace",
            "demo",
            "--version",
            "2024-06",
        ],
    );
    store.expect(
        0,
        &[
            "settlement",
            "set",
            "--workspace",
            "demo",
            "--method",
            "aws",
            "--account",
            "123456789012",
        ],
    );
}

#[test]
fn serve_without_a_key_or_on_a_bad_address_exits_2() {
    let store = Store::new();
    let run = store.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--auth-key"), "{run:?}");
    let key = key_file(&store);
    let run = store.run(&["serve", "--listen", "not-an-address", "--auth-key", &key]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not-an-address"), "{run:?}");
}
