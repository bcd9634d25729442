//! `pc-autoscaler status`: asks a running daemon for `/status` and `/activities` and
//! renders them for people on the host: one line per target (what it has, what it
//! wants, why), then the recent changes, newest first.
//!
//! A plain HTTP/1.1 GET on a std socket: the daemon's endpoints are local, and this
//! command must not need a runtime or a TLS stack. It must not change anything.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::escape::{Printable, printable};
use crate::metrics::CloudWatchBill;
use crate::runtime::state::activity::{Activity, TargetStatus};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("`{0}` is not an http://host:port URL")]
    Url(String),
    #[error("cannot reach {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}{path} answered HTTP {status}: {body}")]
    Http {
        url: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{url}{path} answered something that is not its JSON: {reason}")]
    Malformed {
        url: String,
        path: String,
        reason: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// A plain HTTP/1.1 GET of `path` from `authority` (`host:port`), giving up after
/// `timeout` for connecting and for each read: the status and the body.
pub fn http_get(authority: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let address = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let malformed =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed("no status line"))?;
    Ok((status, http_body(head, body)))
}

/// GETs `path` from `url` (`http://host:port`) and returns the body of a 200.
fn get(url: &str, path: &str) -> Result<String, StatusError> {
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| StatusError::Url(url.to_owned()))?;
    let (status, body) =
        http_get(authority, path, TIMEOUT).map_err(|source| StatusError::Connect {
            url: url.to_owned(),
            source,
        })?;
    if status != 200 {
        return Err(StatusError::Http {
            url: url.to_owned(),
            path: path.to_owned(),
            status,
            body: body.trim().to_owned(),
        });
    }
    Ok(body)
}

/// An HTTP/1.1 body as sent after `head`, with a chunked transfer encoding undone.
pub fn http_body(head: &str, body: &str) -> String {
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    if !chunked {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

fn field<T: serde::de::DeserializeOwned>(
    url: &str,
    path: &str,
    body: &str,
    name: &str,
) -> Result<T, StatusError> {
    let malformed = |reason: String| StatusError::Malformed {
        url: url.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|error| malformed(error.to_string()))?;
    serde_json::from_value(value[name].take()).map_err(|error| malformed(error.to_string()))
}

/// Reads the status of every target (or `target`) and its last `last` activities,
/// and renders both.
pub fn report(url: &str, target: Option<&str>, last: usize) -> Result<String, StatusError> {
    let query = target.map_or_else(String::new, |target| {
        format!("target={}&", percent_encode(target))
    });
    let mut statuses: Vec<TargetStatus> = Vec::new();
    let mut offset = 0;
    let mut bill = None;
    let mut held = None;
    loop {
        let path = format!("/status?{query}offset={offset}");
        let body = get(url, &path)?;
        let page: Vec<TargetStatus> = field(url, &path, &body, "targets")?;
        let next: Option<usize> = field(url, &path, &body, "next_offset")?;
        // Older daemons do not say it.
        bill = bill.or(field::<Option<CloudWatchBill>>(
            url,
            &path,
            &body,
            "cloudwatch",
        )?);
        // Only with spread leases (and older daemons do not say it).
        held = held.or(field::<Option<Vec<String>>>(
            url,
            &path,
            &body,
            "shards_held",
        )?);
        statuses.extend(page);
        match next {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    let path = format!("/activities?{query}limit={last}");
    let body = get(url, &path)?;
    let activities: Vec<Activity> = field(url, &path, &body, "activities")?;
    let mut out = render(&statuses, &activities);
    if let Some(bill) = bill {
        out.push_str(&render_bill(&bill));
    }
    if let Some(held) = held {
        let held: Vec<String> = held
            .iter()
            .map(|shard| Printable(shard).to_string())
            .collect();
        let _ = writeln!(
            out,
            "\nShards this copy holds ([leader] spread): {}",
            if held.is_empty() {
                "none".to_owned()
            } else {
                held.join(", ")
            }
        );
    }
    Ok(out)
}

/// What CloudWatch reads have cost since the start, and a month at that rate.
pub fn render_bill(bill: &CloudWatchBill) -> String {
    let mut out = format!(
        "\nCloudWatch: {} metrics requested in {}, ${:.2} a month at that rate ($0.01 per 1,000)\n",
        bill.metrics_requested,
        crate::config::keys::show_duration(Duration::from_secs_f64(bill.seconds)),
        bill.usd_per_month
    );
    if bill.shards.len() > 1 {
        for shard in &bill.shards {
            let _ = writeln!(
                out,
                "  {}/{}: {}, ${:.2} a month",
                Printable(&shard.account),
                Printable(&shard.region),
                shard.metrics_requested,
                shard.usd_per_month
            );
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters, for a query string.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The table and the history, as plain text.
pub fn render(statuses: &[TargetStatus], activities: &[Activity]) -> String {
    let header = ["TARGET", "HAS", "WANTS", "BOUNDS", "METRIC", "WHY"].map(str::to_owned);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(statuses.iter().map(status_row))
        .collect();
    let mut out = String::new();
    let widths: Vec<usize> = (0..5)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        for (column, width) in widths.iter().enumerate() {
            let _ = write!(out, "{:<width$}  ", row[column]);
        }
        let _ = writeln!(out, "{}", row[5]);
    }
    if statuses.is_empty() {
        let _ = writeln!(out, "(no target evaluated yet)");
    }
    let _ = writeln!(
        out,
        "\nLast {} change{}, newest first:",
        activities.len(),
        if activities.len() == 1 { "" } else { "s" }
    );
    for activity in activities {
        let _ = writeln!(out, "{}", activity_line(activity));
    }
    out
}

/// One target's line: what it has, wants, its bounds, its metric and why.
fn status_row(status: &TargetStatus) -> [String; 6] {
    let has = if status.allocation == "READY" || status.allocation == "NONE" {
        format!("{}", status.allocated)
    } else {
        format!(
            "{} ({} requested, {})",
            status.allocated, status.requested, status.allocation
        )
    };
    let bounds = format!(
        "{}..{} ({})",
        status.min,
        status.max,
        status
            .rule
            .as_deref()
            .map_or_else(|| "target".to_owned(), |rule| format!("rule {rule}"))
    );
    let metric = match (&status.metric, status.metric_value) {
        (Some(metric), Some(value)) => format!(
            "{metric} {value:.1}, {} s old",
            status.metric_age_seconds.unwrap_or_default()
        ),
        (Some(metric), None) => format!("{metric}: {}", status.metric_data),
        (None, _) => "-".to_owned(),
    };
    let mut why = status.reason.clone();
    if let Some(until) = status.override_until {
        let left = (until - status.evaluated_at).num_minutes().max(0);
        let _ = write!(why, " ({}h {:02}m left)", left / 60, left % 60);
    }
    if status.allocation == "FAILED" {
        let reason = status.status_reason.as_deref().unwrap_or("no reason given");
        let _ = write!(why, "; allocation FAILED: {reason}");
        if let Some(next) = status.next_attempt {
            let _ = write!(why, ", written again at {}", next.format("%H:%M:%S UTC"));
        }
    }
    if let Some(blocked) = &status.blocked {
        let _ = write!(why, "; BLOCKED: {blocked}");
    }
    // Every cell quotes what the daemon answered: escaped, a cell is one line.
    [
        match &status.region {
            // A target of an account with one Region does not name it.
            Some(region) if !status.target.contains(region.as_str()) => {
                format!("{} ({region})", status.target)
            }
            _ => status.target.clone(),
        },
        has,
        status.desired.to_string(),
        bounds,
        metric,
        why,
    ]
    .map(|cell| printable(&cell).into_owned())
}

fn activity_line(activity: &Activity) -> String {
    let change = match (activity.from, activity.to) {
        (Some(from), Some(to)) if from != to => format!("{from} → {to}"),
        (Some(from), _) => format!("at {from}"),
        (None, Some(to)) => format!("→ {to}"),
        (None, None) => String::new(),
    };
    let word = |value: serde_json::Result<serde_json::Value>| {
        value
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let kind = word(serde_json::to_value(activity.kind));
    let trigger = word(serde_json::to_value(activity.trigger));
    let epoch = if activity.epoch > 0 {
        format!("  [epoch {}]", activity.epoch)
    } else {
        String::new()
    };
    format!(
        "{}  {}  {kind} {change}  ({trigger}) {}  → {}{epoch}",
        activity.time.format("%Y-%m-%d %H:%M:%S UTC"),
        Printable(&activity.target),
        Printable(&activity.reason),
        Printable(&activity.outcome),
    )
}
