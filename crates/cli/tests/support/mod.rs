//! What the tests of `sluice serve` as a process share: starting it on a
//! free port with a data directory, stopping it (SIGTERM) or killing it
//! (SIGKILL), and running the client against it.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Served {
    pub fn start(dir: &Path, tag: &str) -> Served {
        Self::start_with(dir, tag, &[])
    }

    pub fn start_with(dir: &Path, tag: &str, args: &[&str]) -> Served {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let log = dir.join(format!("serve-{tag}.out"));
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--data"])
            .arg(dir.join("data"))
            .args(["--listen", &addr])
            .args(args)
            .env_remove("SLUICE_ADMIN_TOKEN")
            .env_remove("SLUICE_MASTER_KEY")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("serve-{tag}.err"))).unwrap())
            .spawn()
            .unwrap();
        let served = Served { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&served.addr) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    return served;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the server did not get ready: {}",
            std::fs::read_to_string(dir.join(format!("serve-{tag}.err"))).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no draining, nothing settled.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The `sluice` client against `served` with `token`.
pub fn sluice(served: &Served, token: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(cwd)
        .env("SLUICE_URL", served.url())
        .env("SLUICE_TOKEN", token)
        .output()
        .unwrap()
}

pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
