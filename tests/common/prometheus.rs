//! A real Prometheus server scraping daemons on 127.0.0.1 every second, and its query
//! API. `scripts/test.sh` installs the Debian package.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{free_port, http_get};

pub struct Prometheus {
    pub address: String,
    child: Child,
}

impl Prometheus {
    /// Scrapes `targets` (`127.0.0.1:port`), keeping its files under `dir`.
    pub fn start(dir: &Path, targets: &[&str]) -> Self {
        let port = free_port();
        let scrape = dir.join("prometheus.yml");
        let list: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        std::fs::write(
            &scrape,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pc-autoscaler\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .expect("write the scrape config");
        let child = Command::new("prometheus")
            .args([
                &format!("--config.file={}", scrape.display()),
                &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (scripts/test.sh installs it)");
        Self {
            address: format!("127.0.0.1:{port}"),
            child,
        }
    }

    /// How many series an instant query returns; `None` when it fails.
    pub fn series(&self, expr: &str) -> Option<usize> {
        let (status, body) = http_get(
            &self.address,
            &format!(
                "/api/v1/query?query={}",
                pc_autoscaler::cli::status::percent_encode(expr)
            ),
        )?;
        if status != 200 {
            return None;
        }
        let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
        answer["data"]["result"].as_array().map(Vec::len)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
