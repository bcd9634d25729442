//! moto in server mode: a real DynamoDB API on 127.0.0.1, one server per test.
//! `scripts/test.sh` installs it into `target/moto-venv`; a test fails (never skips)
//! when it is missing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

pub struct Moto {
    pub url: String,
    child: Child,
}

impl Moto {
    pub fn start() -> Self {
        let python = super::repo_file("target/moto-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `bash scripts/test.sh`, which installs moto (PyPI) for these tests",
            python.display()
        );
        let port = free_port();
        // moto's server with its requests serialised (see the script): DynamoDB's
        // conditional writes are atomic, moto's are not under concurrent requests.
        let child = Command::new(&python)
            .arg(super::repo_file("tests/common/moto_serial.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let address = format!("127.0.0.1:{port}");
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&address).is_ok()
        });
        assert!(up, "moto_server did not listen on {address} within 30 s");
        Self {
            url: format!("http://{address}"),
            child,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
