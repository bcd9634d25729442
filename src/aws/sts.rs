//! Who the caller is, as AWS sees it (`GetCallerIdentity`): the setter of an override
//! kept in the lease table. What it must not do: assume roles (the credential chain
//! does) or be needed for anything but naming the caller.

use super::AwsError;
use crate::config::AwsSettings;

/// The ARN of the caller's identity, through `endpoint` (the lease table's, in tests a
/// local one) or STS's own.
pub async fn caller_arn(
    settings: &AwsSettings,
    endpoint: Option<&str>,
) -> Result<String, AwsError> {
    let shared = super::loader(settings, endpoint).load().await;
    let config = aws_sdk_sts::config::Builder::from(&shared)
        .interceptor(super::AnswerLimit(super::answers::MAX_ANSWER_BYTES))
        .build();
    let answer = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(super::errors::from_sdk)?;
    answer.arn.ok_or_else(|| AwsError::Malformed {
        message: "GetCallerIdentity answered without an ARN".into(),
    })
}
