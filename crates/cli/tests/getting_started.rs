//! `docs/getting-started.md`, run as written: every `$ command` of its
//! `sh` blocks runs in one shell, in order, in an empty directory, with the
//! files of its `file=NAME` blocks written where they appear, and the
//! `sh server` block started in the background. The output shown under
//! a command must appear in what it printed, in order (`…` stands for
//! anything). The only change made to the page is the address: the test
//! serves on a free port instead of 8080.
//!
//! The `sh setup` block builds the release binary and puts it on `PATH`;
//! the test checks that block is what it expects and puts the binary under
//! test on `PATH` instead of building a second one.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PAGE: &str = "docs/getting-started.md";
const DOC_ADDR: &str = "127.0.0.1:8080";
const SETUP: &str =
    "cargo build --release -p sluice-cli\nexport PATH=\"$PWD/target/release:$PATH\"\n";

enum Step {
    File {
        name: String,
        text: String,
    },
    Command {
        line: usize,
        command: String,
        expect: Vec<String>,
    },
    Server {
        line: usize,
        command: String,
        expect: Vec<String>,
    },
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The steps of the page, in order.
fn steps(page: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut lines = page.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let info: Vec<&str> = info.split_whitespace().collect();
        let mut block = Vec::new();
        for (n, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            block.push((n + 1, l.to_owned()));
        }
        let file = info.iter().find_map(|w| w.strip_prefix("file="));
        match (info.first().copied(), file) {
            (_, Some(name)) => {
                let mut text: String = block.iter().map(|(_, l)| format!("{l}\n")).collect();
                if text.is_empty() {
                    text.push('\n');
                }
                steps.push(Step::File {
                    name: name.to_owned(),
                    text,
                });
            }
            (Some("sh"), None) if info.get(1) == Some(&"setup") => {
                let text: String = block.iter().map(|(_, l)| format!("{l}\n")).collect();
                assert_eq!(
                    text, SETUP,
                    "the setup block of {PAGE} changed; update the test"
                );
            }
            (Some("sh"), None) => {
                let server = info.get(1) == Some(&"server");
                for (n, l) in block {
                    if let Some(command) = l.strip_prefix("$ ") {
                        let command = command.to_owned();
                        steps.push(if server {
                            Step::Server {
                                line: n,
                                command,
                                expect: Vec::new(),
                            }
                        } else {
                            Step::Command {
                                line: n,
                                command,
                                expect: Vec::new(),
                            }
                        });
                    } else {
                        match steps.last_mut() {
                            Some(Step::Command { expect, .. } | Step::Server { expect, .. }) => {
                                expect.push(l);
                            }
                            _ => panic!("{PAGE}:{n}: output before any `$ command`"),
                        }
                    }
                }
            }
            _ => {}
        }
    }
    steps
}

/// Whether `line` fits `pattern`, where `…` stands for anything.
fn fits(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').map(str::trim).collect();
    let line = line.trim();
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if i == parts.len() - 1 {
            return rest.trim_end().ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    parts.len() > 1 || rest.is_empty()
}

/// The expected lines that `output` does not show in order.
fn unmatched(expect: &[String], output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut at = 0;
    for pattern in expect {
        if pattern.trim() == "…" {
            continue;
        }
        match lines[at..].iter().position(|l| fits(pattern, l)) {
            Some(i) => at += i + 1,
            None => return Some(pattern.clone()),
        }
    }
    None
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn getting_started_runs_as_written() {
    let page = std::fs::read_to_string(root().join(PAGE)).unwrap();
    let steps = steps(&page);
    assert!(
        steps.iter().any(|s| matches!(s, Step::Server { .. })),
        "{PAGE} never starts the server"
    );
    let dir = std::env::temp_dir().join(format!("sluice-getting-started-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".doc")).unwrap();
    let addr = free_addr();
    let local = |text: &str| text.replace(DOC_ADDR, &addr);

    let mut script = String::from("set -u\n");
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::File { name, text } => {
                let _ = writeln!(
                    script,
                    "cat > '{name}' <<'SLUICE_DOC_EOF'\n{text}SLUICE_DOC_EOF"
                );
            }
            Step::Command { command, .. } => {
                let _ = writeln!(
                    script,
                    "{{ {}\n}} > .doc/out.{i} 2>&1 < /dev/null; echo $? > .doc/rc.{i}",
                    local(command)
                );
            }
            Step::Server { command, .. } => {
                let _ = writeln!(
                    script,
                    "{} > .doc/out.{i} 2>&1 < /dev/null &\nSLUICE_DOC_SERVER=$!\n\
                     for _ in $(seq 200); do curl -sf http://{addr}/readyz > /dev/null && break; sleep 0.05; done",
                    local(command)
                );
            }
        }
    }
    script.push_str(
        "if [ -n \"${SLUICE_DOC_SERVER:-}\" ]; then kill -TERM $SLUICE_DOC_SERVER; wait $SLUICE_DOC_SERVER; echo $? > .doc/server.rc; fi\n",
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env("PATH", path)
        .env("SLUICE_LISTEN", &addr)
        .env("SLUICE_URL", format!("http://{addr}"))
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_DATA")
        .env_remove("SLUICE_ADMIN_TOKEN")
        .env_remove("SLUICE_MASTER_KEY")
        .env_remove("RUST_LOG")
        .status()
        .unwrap();
    assert!(status.success(), "the page's script could not run");

    let read =
        |name: String| std::fs::read_to_string(dir.join(".doc").join(name)).unwrap_or_default();
    let mut commands = 0;
    for (i, step) in steps.iter().enumerate() {
        let (line, command, expect) = match step {
            Step::Command {
                line,
                command,
                expect,
            }
            | Step::Server {
                line,
                command,
                expect,
            } => (line, command, expect),
            Step::File { .. } => continue,
        };
        commands += 1;
        let output = read(format!("out.{i}"));
        if matches!(step, Step::Command { .. }) {
            let rc = read(format!("rc.{i}"));
            assert_eq!(
                rc.trim(),
                "0",
                "{PAGE}:{line}: `{command}` failed (exit {}):\n{output}",
                rc.trim()
            );
        }
        let expect: Vec<String> = expect.iter().map(|l| local(l)).collect();
        if let Some(missing) = unmatched(&expect, &output) {
            panic!("{PAGE}:{line}: `{command}` did not print\n  {missing}\nit printed:\n{output}");
        }
    }
    assert_eq!(
        read("server.rc".into()).trim(),
        "0",
        "the server did not stop cleanly on SIGTERM"
    );
    assert!(commands >= 15, "only {commands} commands found in {PAGE}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pattern_matching_is_strict_enough() {
    assert!(fits("greet 1.0", "greet 1.0"));
    assert!(!fits("greet 1.0", "greet 1.1"));
    assert!(!fits("greet 1.0", "greet 1.0 (unchanged)"));
    assert!(fits("PASS a (… ms)", "PASS a (0.1 ms)"));
    assert!(fits("KEY … PIPELINE …", "KEY   PIPELINE  VERSION"));
    assert!(!fits("… greet … ok …", "x  greet  1.0  error"));
    assert!(fits("x-execution-key: …", "x-execution-key: 01a2"));
    assert_eq!(unmatched(&["a".into(), "c".into()], "a\nb\nc\n"), None);
    assert_eq!(
        unmatched(&["c".into(), "a".into()], "a\nb\nc\n"),
        Some("a".into())
    );
}
