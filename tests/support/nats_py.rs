//! The Python side of the cross-language NATS tests: the nats-py venv and
//! the scripts under scripts/nats_py/.
//!
//! Python comes from `$PINBUS_NATS_PY`, or the venv that
//! `scripts/nats_py/venv.sh` makes under target/ (scripts/test-nats.sh and
//! scripts/test-all.sh run it first). Without it a test fails, saying how
//! to make it: a cross-language test that passed without the other
//! language would prove nothing.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// A script of scripts/nats_py/.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/nats_py")
        .join(name)
}

/// The Python with nats-py.
pub fn python() -> PathBuf {
    let candidate = std::env::var_os("PINBUS_NATS_PY")
        .map(PathBuf::from)
        .or_else(|| {
            let venv =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nats-py-venv/bin/python");
            venv.is_file().then_some(venv)
        });
    let works = candidate.as_ref().is_some_and(|py| {
        Command::new(py)
            .args(["-c", "import nats"])
            .status()
            .is_ok_and(|s| s.success())
    });
    match candidate {
        Some(py) if works => py,
        _ => panic!(
            "no Python with nats-py: run `bash scripts/nats_py/venv.sh` (it makes a venv under \
             target/) or set PINBUS_NATS_PY"
        ),
    }
}

/// Runs `script` with `args` to its end and returns what it printed, one
/// JSON value per line; panics with its stderr if it failed.
pub fn json_lines(script_name: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .arg(script(script_name))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script_name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("the script prints JSON lines"))
        .collect()
}
