//! A search adapter that refuses a paging cookie the server already sent: a server that hands back
//! the same cookie keeps a paged search going forever, one page at a time. It sits behind ldap3's
//! `PagedResults` in the adapter chain, where each page's end, with its controls, passes by.

use std::fmt::Debug;

use async_trait::async_trait;
use ldap3::adapters::Adapter;
use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::result::{LdapError, LdapResult, Result};
use ldap3::{ResultEntry, Scope, SearchStream};

/// Result code `other` (80): what the repeated cookie is reported as.
const OTHER: u32 = 80;

#[derive(Clone, Debug, Default)]
pub struct PagingGuard {
    cookies: Vec<Vec<u8>>,
}

#[async_trait]
impl<'a, S, A> Adapter<'a, S, A> for PagingGuard
where
    S: AsRef<str> + Clone + Debug + Send + Sync + 'a,
    A: AsRef<[S]> + Clone + Debug + Send + Sync + 'a,
{
    async fn start(
        &mut self,
        stream: &mut SearchStream<'a, S, A>,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: A,
    ) -> Result<()> {
        stream.start(base, scope, filter, attrs).await
    }

    async fn next(&mut self, stream: &mut SearchStream<'a, S, A>) -> Result<Option<ResultEntry>> {
        let item = stream.next().await?;
        if item.is_none()
            && let Some(cookie) = stream.res.as_ref().and_then(page_cookie)
            && !cookie.is_empty()
        {
            if self.cookies.contains(&cookie) {
                return Err(LdapError::LdapResult {
                    result: LdapResult {
                        rc: OTHER,
                        matched: String::new(),
                        text: "the server sent a paging cookie it had sent before, so the search would never end".into(),
                        refs: Vec::new(),
                        ctrls: Vec::new(),
                    },
                });
            }
            self.cookies.push(cookie);
        }
        Ok(item)
    }

    async fn finish(&mut self, stream: &mut SearchStream<'a, S, A>) -> LdapResult {
        stream.finish().await
    }
}

fn page_cookie(result: &LdapResult) -> Option<Vec<u8>> {
    result.ctrls.iter().find_map(|control| match control {
        Control(Some(ControlType::PagedResults), raw) => Some(raw.parse::<PagedResults>().cookie),
        _ => None,
    })
}
