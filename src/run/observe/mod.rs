//! Step 4 of a run: the task's namespace's UserGroups as they are. The operator plans against its
//! watch-backed view and lists only when the view cannot be trusted; `sync --dry-run` lists by
//! metadata first ([`metadata`]).

pub mod metadata;

use std::sync::Arc;

use kube::api::{Api, ListParams};

use super::api_error::ApiError;
use super::user_pool::UserPool;
use crate::api::UserGroup;

/// Objects per page when listing: a page of large groups is a few megabytes of JSON.
const LIST_PAGE: u32 = 250;

/// Every UserGroup of the namespace, from the apiserver, its members shared with `pool`. Listed a
/// page at a time, so that only one page's members exist twice before they are shared.
pub async fn list_groups(
    api: &Api<UserGroup>,
    pool: &UserPool,
) -> Result<Vec<Arc<UserGroup>>, ApiError> {
    let mut groups = Vec::new();
    let list = |params: ListParams| async move { api.list(&params).await };
    each_page(LIST_PAGE, list, |items| {
        groups.extend(items.into_iter().map(|mut g| {
            pool.share_all(&mut g.spec.users);
            Arc::new(g)
        }));
    })
    .await?;
    Ok(groups)
}

/// Lists `page_size` objects at a time with `list`, handing each page's items to `take`.
async fn each_page<T, F, Fut>(
    page_size: u32,
    mut list: F,
    mut take: impl FnMut(Vec<T>),
) -> Result<(), ApiError>
where
    // ObjectList asks for it.
    T: Clone,
    F: FnMut(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<T>, kube::Error>>,
{
    let mut params = ListParams::default().limit(page_size);
    loop {
        let page = list(params.clone())
            .await
            .map_err(ApiError::while_("listing UserGroups"))?;
        take(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}
