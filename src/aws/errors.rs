//! One error type for every AWS call, and its mapping from the SDK's errors.
//!
//! The mapping reads the HTTP status, the error code and, for throttling, the
//! `Retry-After` header or the `retryAfterSeconds` field of the body (a string), so the
//! write course can wait exactly as long as Lambda asks.
//!
//! A refusal's message is also read for a cause a person can fix ([`RefusalCause`]):
//! SnapStart, an unpublished version, a weighted alias, reserved concurrency, the
//! account's floor.
//!
//! What it must not do: decide what an error means for a write (the write course does);
//! it only names the error.

use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// Longest `retryAfterSeconds` honoured as given; a larger value is clamped where the
/// header is read, so a bogus header cannot park a target or a budget for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// `TooManyRequestsException` (429): wait `retry_after` when given.
    #[error("throttled ({}): {message}", reason.as_deref().unwrap_or("no reason given"))]
    Throttled {
        retry_after: Option<Duration>,
        reason: Option<String>,
        message: String,
    },
    /// `ResourceConflictException` (409): an operation on the config is in progress.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// `InvalidParameterValueException` (400): the request itself is wrong.
    #[error("invalid parameter: {message}")]
    InvalidParameter { message: String },
    /// Any other 4xx: not found, access denied, ...
    #[error("{code}: {message}")]
    Client { code: String, message: String },
    /// 5xx.
    #[error("server error ({code}): {message}")]
    Server { code: String, message: String },
    /// No answer within the timeout.
    #[error("timed out: {message}")]
    Timeout { message: String },
    /// The connection failed (DNS, TCP, TLS); `message` is the SDK's whole cause chain.
    #[error("network error: {message}")]
    Network { message: String },
    /// No credentials could be found, or the credential provider failed; `message` is
    /// the SDK's whole cause chain, which names every provider it tried.
    #[error(
        "no usable AWS credentials: {message}. Set AWS_PROFILE (or `[aws] profile`), or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance, task or pod role"
    )]
    Credentials { message: String },
    /// An answer that could not be read.
    #[error("unreadable response: {message}")]
    Malformed { message: String },
    /// Not an AWS answer: the write was not sent, because this copy's leader lease
    /// (epoch `epoch`) was not fresh enough when its turn came.
    #[error("not sent: the leader lease of epoch {epoch} is not fresh enough to write")]
    Fenced { epoch: u64 },
}

impl AwsError {
    /// A bounded label for the `outcome` of a request in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            AwsError::Throttled { .. } => "throttled",
            AwsError::Conflict { .. } => "conflict",
            AwsError::InvalidParameter { .. } | AwsError::Client { .. } => "client_error",
            AwsError::Credentials { .. } => "credentials",
            AwsError::Server { .. } | AwsError::Network { .. } | AwsError::Malformed { .. } => {
                "server_error"
            }
            AwsError::Timeout { .. } => "timeout",
            AwsError::Fenced { .. } => "fenced",
        }
    }

    /// Whether the same request can never pass: only `InvalidParameterValue`. Every
    /// other 4xx (`AccessDenied` while IAM propagates, an expired token, a request
    /// that was never sent, a KMS key not yet usable, a function being deployed) may
    /// pass later, so it is retried with backoff rather than remembered.
    pub fn is_permanent(&self) -> bool {
        matches!(self, AwsError::InvalidParameter { .. })
    }
}

/// Why Lambda refused a value, when its message names a cause a person can fix.
/// Read from the message's words, not its exact text, which Lambda does not publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCause {
    /// The version has SnapStart on: it cannot have provisioned concurrency.
    SnapStart,
    /// `$LATEST` or another unpublished version.
    Unpublished,
    /// An alias that routes traffic to two versions.
    WeightedAlias,
    /// More than the function's reserved concurrency.
    AboveReserved,
    /// The account's unreserved concurrency would fall below its floor.
    AccountFloor,
    Other,
}

impl RefusalCause {
    pub fn of(message: &str) -> Self {
        let message = message.to_ascii_lowercase();
        let has = |word: &str| message.contains(word);
        if has("snapstart") || has("snap start") {
            RefusalCause::SnapStart
        } else if has("$latest") || has("unpublished") {
            RefusalCause::Unpublished
        } else if has("routing") || has("weight") {
            RefusalCause::WeightedAlias
        } else if has("unreserved") {
            RefusalCause::AccountFloor
        } else if has("reserved") {
            RefusalCause::AboveReserved
        } else {
            RefusalCause::Other
        }
    }

    /// What a person can do about it.
    pub fn remedy(self) -> Option<&'static str> {
        Some(match self {
            RefusalCause::SnapStart => {
                "SnapStart is on for this version, and a version with SnapStart cannot have provisioned concurrency: turn SnapStart off and publish a new version (or point the alias at one without it), or drop this target and rely on SnapStart"
            }
            RefusalCause::Unpublished => {
                "an unpublished version ($LATEST) cannot have provisioned concurrency: point the target at an alias or a published version"
            }
            RefusalCause::WeightedAlias => {
                "an alias that routes traffic to two versions cannot have provisioned concurrency: remove its routing weights, or manage each version"
            }
            RefusalCause::AboveReserved => {
                "the function's reserved concurrency is below this value: raise its reserved concurrency, or lower the target's max"
            }
            RefusalCause::AccountFloor => {
                "the account's unreserved concurrency would fall below its floor: lower other functions' reserved or provisioned concurrency, ask AWS for a higher concurrency quota, or lower this target's max"
            }
            RefusalCause::Other => return None,
        })
    }
}

/// The error and every `source()` below it, joined: the SDK's top-level messages
/// ("dispatch failure", "other") say little; the cause is further down.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn mentions_credentials(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("identity")
}

/// Maps any SDK operation error.
pub fn from_sdk<E>(error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::TimeoutError(_) => AwsError::Timeout {
            message: format!("no response within the timeout ({})", chain(&error)),
        },
        SdkError::DispatchFailure(ref failure) => {
            let message = chain(&error);
            if failure.is_timeout() {
                AwsError::Timeout { message }
            } else if mentions_credentials(&message) {
                AwsError::Credentials { message }
            } else {
                AwsError::Network { message }
            }
        }
        SdkError::ResponseError(response) => AwsError::Malformed {
            message: format!(
                "HTTP {}: {}",
                response.raw().status().as_u16(),
                chain(&SdkError::<E, HttpResponse>::ResponseError(response))
            ),
        },
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            if status < 300 {
                // A success status whose body did not parse: the answer is unusable,
                // not a refusal.
                return AwsError::Malformed {
                    message: format!(
                        "HTTP {status} with an unparsable body: {}",
                        chain(context.err())
                    ),
                };
            }
            let code = context.err().code().unwrap_or_default().to_owned();
            let message = match context.err().message() {
                Some(message) => message.to_owned(),
                None => format!("HTTP {status}: {}", chain(context.err())),
            };
            classify(status, &code, message, context.raw())
        }
        other => {
            let message = chain(&other);
            if mentions_credentials(&message) {
                AwsError::Credentials { message }
            } else {
                AwsError::Client {
                    code: "RequestNotSent".into(),
                    message,
                }
            }
        }
    }
}

fn classify(status: u16, code: &str, message: String, raw: &HttpResponse) -> AwsError {
    let body: Option<serde_json::Value> = raw
        .body()
        .bytes()
        .and_then(|bytes| serde_json::from_slice(bytes).ok());
    let body_field = |name: &str| {
        body.as_ref()
            .and_then(|body| body.get(name))
            .and_then(|value| match value {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
    };
    match code {
        "TooManyRequestsException" | "ThrottlingException" | "Throttling" => {
            throttled(raw, &body_field, message)
        }
        _ if status == 429 => throttled(raw, &body_field, message),
        "ResourceConflictException" => AwsError::Conflict { message },
        _ if status == 409 => AwsError::Conflict { message },
        "InvalidParameterValueException" => AwsError::InvalidParameter { message },
        _ if status >= 500 => AwsError::Server {
            code: if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code.to_owned()
            },
            message,
        },
        _ => AwsError::Client {
            code: if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code.to_owned()
            },
            message,
        },
    }
}

fn throttled(
    raw: &HttpResponse,
    body_field: &dyn Fn(&str) -> Option<String>,
    message: String,
) -> AwsError {
    let retry_after = raw
        .headers()
        .get("retry-after")
        .map(str::to_owned)
        .or_else(|| body_field("retryAfterSeconds"))
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| !seconds.is_nan())
        // Clamped before it becomes a Duration: "1e20" or "inf" must not panic.
        .map(|seconds| Duration::from_secs_f64(seconds.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64())));
    AwsError::Throttled {
        retry_after,
        reason: body_field("Reason"),
        message,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::put_provisioned_concurrency_config::PutProvisionedConcurrencyConfigError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    #[test]
    fn a_refusal_names_a_cause_a_person_can_fix() {
        for (message, cause) in [
            (
                "Provisioned Concurrency is not supported for versions with SnapStart enabled",
                RefusalCause::SnapStart,
            ),
            (
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
                RefusalCause::Unpublished,
            ),
            (
                "Alias with weights can not be used with Provisioned Concurrency",
                RefusalCause::WeightedAlias,
            ),
            (
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
                RefusalCause::AboveReserved,
            ),
            (
                "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].",
                RefusalCause::AccountFloor,
            ),
            ("something else", RefusalCause::Other),
        ] {
            assert_eq!(RefusalCause::of(message), cause, "{message}");
        }
    }

    fn service_error(
        status: u16,
        code: &str,
        body: &str,
        retry_after_header: Option<&str>,
    ) -> AwsError {
        let mut raw = HttpResponse::new(
            StatusCode::try_from(status).expect("a valid status"),
            SdkBody::from(body),
        );
        if let Some(value) = retry_after_header {
            raw.headers_mut().insert("Retry-After", value.to_owned());
        }
        let error = PutProvisionedConcurrencyConfigError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("the message")
                .build(),
        );
        from_sdk(SdkError::service_error(error, raw))
    }

    #[test]
    fn throttling_reads_retry_after_from_the_header_or_the_body() {
        let from_body = service_error(
            429,
            "TooManyRequestsException",
            r#"{"retryAfterSeconds":"2","Reason":"CallerRateLimitExceeded","message":"Rate exceeded"}"#,
            None,
        );
        assert_eq!(
            from_body,
            AwsError::Throttled {
                retry_after: Some(Duration::from_secs(2)),
                reason: Some("CallerRateLimitExceeded".into()),
                message: "the message".into(),
            }
        );
        let from_header = service_error(429, "TooManyRequestsException", "{}", Some("3"));
        assert!(
            matches!(from_header, AwsError::Throttled { retry_after: Some(delay), .. } if delay == Duration::from_secs(3))
        );
        let without = service_error(429, "TooManyRequestsException", "{}", None);
        assert!(matches!(
            without,
            AwsError::Throttled {
                retry_after: None,
                ..
            }
        ));
        assert_eq!(without.label(), "throttled");
    }

    #[test]
    fn an_absurd_retry_after_is_clamped_not_a_panic() {
        for value in ["1e20", "inf", "-5", "NaN"] {
            let body = format!(r#"{{"retryAfterSeconds":"{value}"}}"#);
            let error = service_error(429, "TooManyRequestsException", &body, None);
            let AwsError::Throttled { retry_after, .. } = error else {
                panic!("a 429 is a throttle");
            };
            assert!(
                retry_after.is_none_or(|wait| wait <= MAX_RETRY_AFTER),
                "{value}: {retry_after:?}"
            );
        }
    }

    #[test]
    fn errors_are_classified_by_code_then_status() {
        assert_eq!(
            service_error(409, "ResourceConflictException", "{}", None).label(),
            "conflict"
        );
        let invalid = service_error(400, "InvalidParameterValueException", "{}", None);
        assert_eq!(invalid.label(), "client_error");
        assert!(invalid.is_permanent());
        assert_eq!(
            service_error(404, "ResourceNotFoundException", "{}", None).label(),
            "client_error"
        );
        let server = service_error(503, "ServiceException", "{}", None);
        assert_eq!(server.label(), "server_error");
        assert!(!server.is_permanent());
        let denied = service_error(403, "AccessDeniedException", "{}", None);
        assert!(!denied.is_permanent());
        assert_eq!(
            service_error(500, "", "not json", None).label(),
            "server_error"
        );
    }
}
