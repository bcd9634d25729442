//! The account's functions, walked page by page (`ListFunctions`, 50 a page), each
//! page within the shard's budget. `audit` and discovery's name-glob selectors both
//! walk it here.
//!
//! What it must not do: return part of a list as if it were whole. A walk that cannot
//! reach the end is an error for that walk.

use crate::aws::{AwsError, FunctionSummary, LambdaApi};
use crate::runtime::plane::budget::Priority;
use crate::runtime::plane::control::Control;

/// Pages of `ListFunctions` at most: 50,000 functions.
const MAX_PAGES: usize = 1_000;

/// Every function of the shard's account and Region, in the order Lambda lists them;
/// `progress` hears the count after each page.
pub async fn list_functions<L: LambdaApi>(
    control: &Control<L>,
    mut progress: impl FnMut(usize),
) -> Result<Vec<FunctionSummary>, AwsError> {
    let mut functions = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let (page, next) = control.functions(marker, Priority::Refresh).await?;
        functions.extend(page);
        progress(functions.len());
        marker = next;
        if marker.is_none() {
            return Ok(functions);
        }
    }
    Err(AwsError::Malformed {
        message: format!("ListFunctions still had more after {MAX_PAGES} pages"),
    })
}
