//! A real `nats-server` for the bridge tests: started on a free 127.0.0.1
//! port with JetStream (`-js -sd <tmpdir>`), stopped by PID, killed with
//! SIGKILL and restarted on the same port and store for the fault tests.
//!
//! The binary is `$PINBUS_NATS_SERVER`, `nats-server` on `PATH`, or
//! `/usr/sbin/nats-server` (Debian's `nats-server` package). Without one a
//! test fails, saying how to install it (`bash scripts/test-nats.sh` does):
//! a NATS test that passed without a server would prove nothing.
//!
//! [`NatsServer::start_with_config`] runs the server from a config file
//! (TLS, accounts, permissions) written into the test's temporary store.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a started server may take to accept clients with JetStream on.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct NatsServer {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    monitor: u16,
    store: PathBuf,
    /// A config file to start from (`-c`), if any.
    config: Option<PathBuf>,
}

/// The nats-server binary, if any.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PINBUS_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// Tests fail (not skip) without a server, whatever `PINBUS_REQUIRE_NATS`
/// says.
pub fn required() -> bool {
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free loopback port")
}

impl NatsServer {
    /// Starts a fresh server with an empty store. Panics (the test fails)
    /// when no nats-server is installed; the `Option` is always `Some`.
    pub fn start() -> Option<NatsServer> {
        let mut server = NatsServer::prepare();
        server.spawn();
        Some(server)
    }

    /// Starts a server from a config file: `body` gets the store directory
    /// and returns the settings beyond `listen`, `http` and `jetstream`
    /// (which this writes: 127.0.0.1, random ports, the store), e.g. a
    /// `tls { }` block or `accounts { }`.
    pub fn start_with_config(body: impl FnOnce(&Path) -> String) -> NatsServer {
        let mut server = NatsServer::prepare();
        let extra = body(&server.store);
        let js = server.store.join("js");
        let conf = format!(
            "listen: \"127.0.0.1:{}\"\nhttp: \"127.0.0.1:{}\"\njetstream {{ store_dir: {:?} }}\n{extra}\n",
            server.port, server.monitor, js
        );
        let path = server.store.join("server.conf");
        std::fs::write(&path, conf).expect("config file is writable");
        server.config = Some(path);
        server.spawn();
        server
    }

    fn prepare() -> NatsServer {
        let Some(bin) = find_binary() else {
            panic!(
                "no nats-server found (PINBUS_NATS_SERVER, PATH, /usr/sbin): the NATS bridge \
                 tests need a real server; install it with `apt-get install -y nats-server` or \
                 run `bash scripts/test-nats.sh`, which does"
            );
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "pinbus-nats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).expect("temp dir is writable");
        NatsServer {
            bin,
            child: None,
            port: free_port(),
            monitor: free_port(),
            store,
            config: None,
        }
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store(&self) -> &Path {
        &self.store
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.store.join("server.log")).expect("log file");
        let mut command = Command::new(&self.bin);
        match &self.config {
            Some(conf) => {
                command.arg("-c").arg(conf);
            }
            None => {
                command
                    .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
                    .args(["-m", &self.monitor.to_string()])
                    .args(["-js", "-sd"])
                    .arg(self.store.join("js"));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls the monitor's `/healthz?js-enabled-only=true` until JetStream
    /// answers (it may be recovering its store after a restart).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "nats-server exited at start ({status}); see {}",
                        self.log_path().display()
                    );
                }
            }
            if self.healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server on port {} not ready within {READY_TIMEOUT:?}; see {}",
                self.port,
                self.log_path().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.monitor)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200")
    }

    pub fn log_path(&self) -> PathBuf {
        self.store.join("server.log")
    }

    /// `kill -9 <pid>`: no flush, no goodbye; then reaps the process (the
    /// PID is our unreaped child, so it cannot have been reused).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&mut child, "-KILL");
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill9 or stop");
        self.spawn();
    }

    /// Stops the server by PID (SIGTERM, then SIGKILL if it lingers).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&mut child, "-TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `kill <sig> <pid>`; without a `kill` binary, `Child::kill` (SIGKILL).
fn signal(child: &mut Child, sig: &str) {
    let sent = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        let _ = child.kill();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.store);
        } else {
            eprintln!("nats-server store and log kept in {}", self.store.display());
        }
    }
}

/// The one-worker engine the bridge tests run on either side of NATS.
pub fn engine() -> pinbus::Engine {
    pinbus::Engine::builder()
        .workers(1)
        .idle(pinbus::IdleStrategy::Park)
        .lane_capacity(4096)
        .build()
        .expect("valid engine config")
}
