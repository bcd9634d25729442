//! The account's functions, walked page by page (`ListFunctions`, 50 a page), each
//! page within the shard's budget. `audit` and discovery's name-glob selectors both
//! walk it here.
//!
//! What it must not do: return part of a list as if it were whole. A walk is to the
//! end, however many pages, within [`crate::aws::ACCOUNT_WALK`]; one that cannot
//! reach the end is an error for that walk.

use crate::aws::{ACCOUNT_WALK, AwsError, FunctionSummary, LambdaApi, Walk};
use crate::runtime::plane::budget::Priority;
use crate::runtime::plane::control::Control;

/// Every function of the shard's account and Region, in the order Lambda lists them;
/// `progress` hears the count after each page.
pub async fn list_functions<L: LambdaApi>(
    control: &Control<L>,
    mut progress: impl FnMut(usize),
) -> Result<Vec<FunctionSummary>, AwsError> {
    let mut functions = Vec::new();
    let mut marker = None;
    let mut walk = Walk::new("ListFunctions", ACCOUNT_WALK);
    loop {
        let (page, next) = control.functions(marker, Priority::Refresh).await?;
        functions.extend(page);
        progress(functions.len());
        marker = walk.next(next)?;
        if marker.is_none() {
            return Ok(functions);
        }
    }
}
