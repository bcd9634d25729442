//! `TaggingApi` over the official SDK: the Resource Groups Tagging API's
//! `GetResources` for Lambda functions, one page a call, so that the caller paces the
//! pages. It does not draw on Lambda's shared 15 requests a second.
//!
//! What it must not do: pace the pages itself (the caller does) or read Lambda.

use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::errors::from_sdk;
use super::{AwsError, TaggedFunction, TaggedPage, TaggingApi};

/// The most `GetResources` returns a page.
const RESOURCES_PER_PAGE: i32 = 100;

#[derive(Clone)]
pub struct SdkTagging {
    client: Client,
}

impl SdkTagging {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The function's name in its ARN (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`).
pub fn function_name_of(arn: &str) -> Option<&str> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name] => Some(name),
        _ => None,
    }
}

impl TaggingApi for SdkTagging {
    async fn tagged_page(
        &self,
        tags: &[(String, Option<String>)],
        token: Option<String>,
    ) -> Result<TaggedPage, AwsError> {
        let filters = tags
            .iter()
            .map(|(key, value)| {
                TagFilter::builder()
                    .key(key)
                    .set_values(value.clone().map(|value| vec![value]))
                    .build()
            })
            .collect();
        let output = self
            .client
            .get_resources()
            .resource_type_filters("lambda:function")
            .set_tag_filters(Some(filters))
            .resources_per_page(RESOURCES_PER_PAGE)
            .set_pagination_token(token)
            .send()
            .await
            .map_err(from_sdk)?;
        let functions = output
            .resource_tag_mapping_list()
            .iter()
            .filter_map(|mapping| {
                let name = function_name_of(mapping.resource_arn()?)?;
                let tags = mapping
                    .tags()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect();
                Some(TaggedFunction {
                    name: name.to_owned(),
                    tags,
                })
            })
            .collect();
        let next = output
            .pagination_token()
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        Ok(TaggedPage { functions, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_function_arns_only() {
        assert_eq!(
            function_name_of("arn:aws:lambda:us-east-1:123456789012:function:orders"),
            Some("orders")
        );
        assert_eq!(
            function_name_of("arn:aws:lambda:us-east-1:123456789012:function:orders:live"),
            None
        );
        assert_eq!(function_name_of("arn:aws:s3:::bucket"), None);
    }
}
