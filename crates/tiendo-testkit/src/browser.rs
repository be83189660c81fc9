//! A real browser for tests: Debian's headless Chromium, driven over WebDriver through its
//! `chromedriver` (both killed on drop). Only what the page tests need: open a URL, run a
//! script in the page, take a screenshot.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::http;

/// Where Debian puts them (`apt-get install chromium chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium whose preferred languages are
    /// `languages` (its `Accept-Language`, e.g. `vi-VN,vi`).
    pub async fn start(languages: &str) -> anyhow::Result<Browser> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            anyhow::ensure!(
                Path::new(binary).exists(),
                "{binary} is missing: `apt-get install chromium chromium-driver` (scripts/services.sh does)"
            );
        }
        let port = crate::free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        crate::child::dies_with_parent(command.as_std_mut());
        let driver = command.spawn().context("starting chromedriver")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = http::fetch(addr, "/status", &[]).await;
            if status.status == 200 && status.body.contains("\"ready\":true") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // As root, Chromium runs only without its sandbox; headless, in a small /dev/shm.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1400", format!("--lang={}", languages.split(',').next().unwrap_or("vi"))],
                "prefs": {"intl.accept_languages": languages},
            },
        }}});
        let r = http::request(addr, "POST", "/session", &[], Some(&capabilities)).await;
        let value: Value = serde_json::from_str(&r.body).with_context(|| format!("new session: {}", r.body))?;
        let session = value["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session from chromedriver: {}", r.body))?
            .to_owned();
        Ok(Browser { driver, addr, session })
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        let r = http::request(self.addr, method, &path, &[], body.as_ref()).await;
        let value: Value =
            serde_json::from_str(&r.body).with_context(|| format!("{method} {path}: {} {}", r.status, r.body))?;
        anyhow::ensure!(r.status == 200, "{method} {path}: {} {}", r.status, value["value"]);
        Ok(value["value"].clone())
    }

    /// Opens `url` and waits for the page to load.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(json!({"url": url}))).await.map(|_| ())
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page, and returns
    /// what it returns.
    pub async fn run(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.command("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Waits until `script` returns `true`, up to `timeout`; the time it took.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            if self.run(script, json!([])).await? == Value::Bool(true) {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A PNG screenshot of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let encoded = self.command("GET", "/screenshot", None).await?;
        let png = decode_base64(encoded.as_str().context("a screenshot is a base64 string")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session and stops the driver.
    pub async fn close(mut self) {
        let _ = self.command("DELETE", "", None).await;
        let _ = self.driver.kill().await;
    }
}

fn decode_base64(s: &str) -> anyhow::Result<Vec<u8>> {
    let value = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => anyhow::bail!("not base64: {:?}", c as char),
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(super::decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(super::decode_base64("iVBORw0K").unwrap(), [0x89, b'P', b'N', b'G', 0x0D, 0x0A]);
        assert!(super::decode_base64("a$").is_err());
    }
}
