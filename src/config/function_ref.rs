//! Function references in every form Lambda accepts, and the characters a name
//! shown to people may not hold. What it must not do: read anything but the text.

/// A function reference as Lambda accepts it: a name (`my-function`), a partial ARN
/// (`123456789012:function:my-function`) or a full ARN
/// (`arn:aws:lambda:us-east-1:123456789012:function:my-function`), each optionally
/// followed by `:qualifier`.
#[derive(Debug, PartialEq, Eq)]
pub struct FunctionRef<'a> {
    pub name: &'a str,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub qualifier: Option<&'a str>,
}

/// Lambda's limits: a name is 1 to 64 of these characters; the whole reference at
/// most 140 characters.
const MAX_FUNCTION_NAME: usize = 64;
const MAX_FUNCTION_REFERENCE: usize = 140;

impl<'a> FunctionRef<'a> {
    pub fn parse(text: &'a str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("function must not be empty".into());
        }
        if text.len() > MAX_FUNCTION_REFERENCE {
            return Err(format!(
                "function is {} characters long; Lambda accepts at most {MAX_FUNCTION_REFERENCE}",
                text.len()
            ));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let (account, region, name, qualifier) = match parts.as_slice() {
            [
                "arn",
                partition,
                service,
                region,
                account,
                resource,
                rest @ ..,
            ] => full_arn(
                text,
                [*partition, *service, *region, *account, *resource],
                rest,
            )?,
            ["arn", ..] => {
                return Err(format!(
                    "`{}` is not a complete function ARN; write arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME",
                    printable(text)
                ));
            }
            [account, "function", name] => {
                check_account(account)?;
                (Some(*account), None, *name, None)
            }
            [account, "function", name, qualifier] => {
                check_account(account)?;
                (Some(*account), None, *name, Some(*qualifier))
            }
            [name] => (None, None, *name, None),
            [name, qualifier] => (None, None, *name, Some(*qualifier)),
            _ => {
                return Err(format!(
                    "`{}` is not a function name, partial ARN (ACCOUNT:function:NAME) or ARN",
                    printable(text)
                ));
            }
        };
        let name_valid = !name.is_empty()
            && name.len() <= MAX_FUNCTION_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_valid {
            return Err(format!(
                "`{}` is not a Lambda function name: 1 to {MAX_FUNCTION_NAME} letters, digits, `-` and `_`",
                printable(name)
            ));
        }
        if let Some(qualifier) = qualifier
            && !is_qualifier(qualifier)
        {
            return Err(format!(
                "`{}` is not an alias name or version number (letters, digits, `-` and `_`)",
                printable(qualifier)
            ));
        }
        Ok(Self {
            name,
            account,
            region,
            qualifier,
        })
    }
}

/// The parts of a full function ARN after `arn:`: partition, service, Region, account
/// and resource type, then the name and qualifier.
type ArnParts<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

fn full_arn<'a>(
    text: &str,
    [partition, service, region, account, resource]: [&'a str; 5],
    rest: &[&'a str],
) -> Result<ArnParts<'a>, String> {
    if service != "lambda" {
        return Err(format!(
            "`{}` is not a Lambda ARN: the service is `{service}`, not `lambda`",
            printable(text)
        ));
    }
    check_region(region, partition)?;
    check_account(account)?;
    if resource != "function" {
        return Err(format!(
            "`{}` is not a function ARN: expected `function` after the account, found `{}`",
            printable(text),
            printable(resource)
        ));
    }
    match rest {
        [name] => Ok((Some(account), Some(region), name, None)),
        [name, qualifier] => Ok((Some(account), Some(region), name, Some(qualifier))),
        [] => Err(format!(
            "`{}` has no function name after `function:`",
            printable(text)
        )),
        _ => Err(format!(
            "`{}` has too many `:`-separated parts for a function ARN",
            printable(text)
        )),
    }
}

/// `region` must look like an AWS Region and belong to `partition`.
fn check_region(region: &str, partition: &str) -> Result<(), String> {
    let pieces: Vec<&str> = region.split('-').collect();
    let lowercase =
        |piece: &&str| !piece.is_empty() && piece.chars().all(|c| c.is_ascii_lowercase());
    let well_formed = match pieces.as_slice() {
        [area, middle @ .., number] => {
            area.len() == 2
                && lowercase(area)
                && !middle.is_empty()
                && middle.iter().all(lowercase)
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if !well_formed {
        return Err(format!(
            "`{}` is not an AWS Region (e.g. us-east-1)",
            printable(region)
        ));
    }
    let expected = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    };
    if partition != expected && !(expected == "aws" && partition.starts_with("aws-iso")) {
        return Err(format!(
            "the ARN's partition `{}` does not match region `{region}` (expected `{expected}`)",
            printable(partition)
        ));
    }
    Ok(())
}

fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an AWS account ID: 12 digits",
            printable(account)
        ))
    }
}

pub(super) fn is_qualifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `text` with anything invisible escaped, for quoting user input in an error.
pub(super) fn printable(text: &str) -> String {
    crate::escape::printable(text).into_owned()
}

pub(super) use crate::escape::is_invisible;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn function_references_in_every_form_lambda_accepts() {
        let parsed = |text| FunctionRef::parse(text).expect(text);
        assert_eq!(parsed("my-function").name, "my-function");
        assert_eq!(parsed("my-function:live").qualifier, Some("live"));
        assert_eq!(parsed("123456789012:function:f_1").name, "f_1");
        let arn = parsed("arn:aws:lambda:us-east-1:123456789012:function:f:7");
        assert_eq!(
            (arn.name, arn.region, arn.qualifier),
            ("f", Some("us-east-1"), Some("7"))
        );
        parsed("arn:aws-cn:lambda:cn-northwest-1:123456789012:function:f");
        parsed("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f");
        let partial = parsed("123456789012:function:g:live");
        assert_eq!(
            (partial.name, partial.account, partial.qualifier),
            ("g", Some("123456789012"), Some("live"))
        );
    }

    #[test]
    fn malformed_function_references_are_refused() {
        for text in [
            "",
            "arn:aws:lambda:us-east-1:12345:function",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
            "arn:aws:lambda",
            "12345678901:function:f",
            "a:b:c",
            "f\n",
            "f\u{202E}",
            &"x".repeat(65),
            &format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                "x".repeat(100)
            ),
        ] {
            assert!(FunctionRef::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn invisible_characters_are_escaped_when_quoted() {
        assert_eq!(printable("a\nb\u{202E}"), "a\\u{a}b\\u{202e}");
    }
}
