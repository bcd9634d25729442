//! One error type for every AWS call, and its mapping from the SDK's errors.
//!
//! The mapping reads the HTTP status, the error code and, for throttling, the
//! `Retry-After` header or the `retryAfterSeconds` field of the body (a string), so the
//! actuator can wait exactly as long as Lambda asks.

use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

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
    /// The connection failed.
    #[error("network error: {message}")]
    Network { message: String },
    /// An answer that could not be read.
    #[error("unreadable response: {message}")]
    Malformed { message: String },
}

impl AwsError {
    /// A bounded label for the `outcome` of a request in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            AwsError::Throttled { .. } => "throttled",
            AwsError::Conflict { .. } => "conflict",
            AwsError::InvalidParameter { .. } | AwsError::Client { .. } => "client_error",
            AwsError::Server { .. } | AwsError::Network { .. } | AwsError::Malformed { .. } => {
                "server_error"
            }
            AwsError::Timeout { .. } => "timeout",
        }
    }

    /// Whether trying the same request again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            AwsError::InvalidParameter { .. } | AwsError::Client { .. }
        )
    }
}

/// Maps any SDK operation error.
pub fn from_sdk<E>(error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::TimeoutError(_) => AwsError::Timeout {
            message: "no response within the attempt timeout".into(),
        },
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                AwsError::Timeout {
                    message: "the connection timed out".into(),
                }
            } else {
                AwsError::Network {
                    message: format!(
                        "{:?}",
                        failure.as_connector_error().map(|error| error.to_string())
                    ),
                }
            }
        }
        SdkError::ResponseError(response) => AwsError::Malformed {
            message: format!(
                "HTTP {}: {}",
                response.raw().status().as_u16(),
                std::error::Error::source(&SdkError::<E, HttpResponse>::ResponseError(response))
                    .map_or_else(|| "unreadable body".to_owned(), |source| source.to_string())
            ),
        },
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or_default().to_owned();
            let message = context
                .err()
                .message()
                .map_or_else(|| format!("HTTP {status}"), str::to_owned);
            classify(status, &code, message, context.raw())
        }
        other => AwsError::Client {
            code: "RequestNotSent".into(),
            message: other.to_string(),
        },
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
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(Duration::from_secs_f64);
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
    fn errors_are_classified_by_code_then_status() {
        assert_eq!(
            service_error(409, "ResourceConflictException", "{}", None).label(),
            "conflict"
        );
        let invalid = service_error(400, "InvalidParameterValueException", "{}", None);
        assert_eq!(invalid.label(), "client_error");
        assert!(!invalid.is_transient());
        assert_eq!(
            service_error(404, "ResourceNotFoundException", "{}", None).label(),
            "client_error"
        );
        let server = service_error(503, "ServiceException", "{}", None);
        assert_eq!(server.label(), "server_error");
        assert!(server.is_transient());
        assert_eq!(
            service_error(500, "", "not json", None).label(),
            "server_error"
        );
    }
}
