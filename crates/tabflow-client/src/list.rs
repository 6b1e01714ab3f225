//! Paged lists as streams. Tableau pages by offset (`pageNumber` × `pageSize`), so writes by
//! others while we read can shift items between pages. A list is read in passes: each pass
//! pages from 1; items are de-duplicated by id; a pass is *clean* when `totalAvailable` did not
//! change during it and it returned exactly that many distinct items. Reading stops after the
//! first clean pass, so every item present throughout the read is returned, and none twice.

use std::collections::{HashSet, VecDeque};

use futures::{Stream, StreamExt, TryStreamExt};
use tabflow_wire::fields::Fields;
use tabflow_wire::filter::Filter;
use tabflow_wire::paging::MAX_PAGE_SIZE;
use tabflow_wire::sort::Sort;
use tabflow_wire::xml::TsResponse;

use crate::client::{Client, Request};
use crate::error::{Error, Result};

/// Passes before giving up on a list that never holds still.
const MAX_PASSES: u32 = 6;

/// Pages of one list requested ahead of the one being read, once the first page told the
/// total (issue #15: at 50–200 ms a call, a list of 35 pages read one page at a time waits
/// 35 round trips). Pages are still taken in order, so what a pass sees is unchanged; the
/// client's read permits cap the calls in flight.
const PAGES_AHEAD: usize = 4;

/// Pages requested ahead, each its own task; aborted when the pass restarts or the read ends.
#[derive(Default)]
struct Ahead(VecDeque<(u32, tokio::task::JoinHandle<Result<TsResponse>>)>);

impl Ahead {
    fn clear(&mut self) {
        for (_, h) in self.0.drain(..) {
            h.abort();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A list endpoint with its query; `send()`-style terminal methods read it.
pub struct List<T> {
    client: Client,
    path: String,
    resource: &'static str,
    filter: Option<Filter>,
    sort: Option<Sort>,
    fields: Option<Fields>,
    extra: Vec<(String, String)>,
    page_size: u32,
    /// Relative to `/api/{v}/` instead of the site (server-wide lists: schedules).
    unscoped: bool,
    extract: fn(TsResponse) -> Vec<T>,
    id: fn(&T) -> String,
}

impl<T: Send + 'static> List<T> {
    pub(crate) fn new(
        client: &Client,
        path: impl Into<String>,
        resource: &'static str,
        extract: fn(TsResponse) -> Vec<T>,
        id: fn(&T) -> String,
    ) -> List<T> {
        List {
            client: client.clone(),
            path: path.into(),
            resource,
            filter: None,
            sort: None,
            fields: None,
            extra: vec![],
            page_size: MAX_PAGE_SIZE,
            unscoped: false,
            extract,
            id,
        }
    }

    /// Server-side filter (`filter=`).
    pub fn filter(mut self, f: Filter) -> Self {
        self.filter = Some(f);
        self
    }

    pub fn sort(mut self, s: Sort) -> Self {
        self.sort = Some(s);
        self
    }

    /// Ask only for these attributes (`fields=`).
    pub fn fields(mut self, f: Fields) -> Self {
        self.fields = Some(f);
        self
    }

    pub fn param(mut self, k: &str, v: impl Into<String>) -> Self {
        self.extra.push((k.to_string(), v.into()));
        self
    }

    /// A server-wide list (`/api/{v}/schedules`), not under the site.
    pub fn unscoped(mut self) -> Self {
        self.unscoped = true;
        self
    }

    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, MAX_PAGE_SIZE);
        self
    }

    fn request(&self, page: u32) -> Request {
        let mut r = Request::get(self.path.clone())
            .query("pageSize", self.page_size.to_string())
            .query("pageNumber", page.to_string());
        if let Some(f) = &self.filter {
            r = r.query("filter", f.render());
        }
        if let Some(s) = &self.sort {
            r = r.query("sort", s.to_string());
        }
        if let Some(f) = &self.fields {
            r = r.query("fields", f.render());
        }
        for (k, v) in &self.extra {
            r = r.query(k, v.clone());
        }
        if self.unscoped { r.unscoped() } else { r }
    }

    /// Requests pages `page..` (up to the last of `total` items) ahead, [`PAGES_AHEAD`] at most.
    fn read_ahead(&self, ahead: &mut Ahead, page: u32, total: usize) {
        if ahead.0.front().is_some_and(|(n, _)| *n != page) {
            ahead.clear();
        }
        let last = total.div_ceil(self.page_size as usize) as u32;
        let mut next = ahead.0.back().map_or(page, |(n, _)| n + 1);
        while ahead.0.len() < PAGES_AHEAD && next <= last {
            let client = self.client.clone();
            let req = self.request(next);
            ahead.0.push_back((next, tokio::spawn(async move { client.send_xml(req).await })));
            next += 1;
        }
    }

    /// Every item, each once, in server order of first sight.
    pub fn stream(self) -> impl Stream<Item = Result<T>> + Send {
        struct St<T> {
            list: List<T>,
            seen: HashSet<String>,
            pass: u32,
            page: u32,
            pass_ids: HashSet<String>,
            pass_total: Option<usize>,
            pass_stable: bool,
            done: bool,
            ahead: Ahead,
        }
        let st = St {
            list: self,
            seen: HashSet::new(),
            pass: 1,
            page: 1,
            pass_ids: HashSet::new(),
            pass_total: None,
            pass_stable: true,
            done: false,
            ahead: Ahead::default(),
        };
        futures::stream::try_unfold(st, |mut st| async move {
            loop {
                if st.done {
                    return Ok(None);
                }
                let page = st.page;
                let ahead = st.ahead.0.front().is_some_and(|(n, _)| *n == page);
                let resp = match st.ahead.0.pop_front() {
                    Some((_, h)) if ahead => {
                        h.await.unwrap_or_else(|e| Err(Error::Config(format!("a page read stopped: {e}"))))
                    }
                    other => {
                        if let Some((_, h)) = other {
                            h.abort();
                        }
                        st.ahead.clear();
                        st.list.client.send_xml(st.list.request(page)).await
                    }
                };
                let doc = match resp {
                    Ok(d) => d,
                    // The list shrank under us: the page no longer exists. End this pass unclean.
                    Err(Error::Api { code, .. }) if code == "400006" && st.page > 1 => {
                        st.pass_stable = false;
                        st.ahead.clear();
                        if next_pass(
                            &mut st.pass,
                            &mut st.page,
                            &mut st.pass_ids,
                            &mut st.pass_total,
                            &mut st.pass_stable,
                            st.list.resource,
                        )? {
                            continue;
                        }
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                let total = doc.pagination.as_ref().and_then(|p| p.total_available.parse::<usize>().ok());
                let items = (st.list.extract)(doc);
                let n = items.len();
                match (st.pass_total, total) {
                    (Some(a), Some(b)) if a != b => st.pass_stable = false,
                    _ => {}
                }
                if total.is_some() {
                    st.pass_total = total;
                }
                let mut fresh = Vec::new();
                // In the first pass the ids seen so far are this pass's ids: one set serves
                // (at 250k views a second set of ids would cost ~20 MB).
                let first = st.pass == 1;
                for it in items {
                    let id = (st.list.id)(&it);
                    let new = if first {
                        st.seen.insert(id)
                    } else {
                        if !st.pass_ids.insert(id.clone()) {
                            st.pass_stable = false;
                        }
                        st.seen.insert(id)
                    };
                    if first && !new {
                        st.pass_stable = false;
                    }
                    if new {
                        fresh.push(it);
                    }
                }
                let end_of_pass = match total {
                    None => true,
                    Some(t) => n == 0 || (st.page as usize) * (st.list.page_size as usize) >= t,
                };
                if end_of_pass {
                    let distinct = if st.pass == 1 { st.seen.len() } else { st.pass_ids.len() };
                    let clean = st.pass_stable && total.is_none_or(|t| distinct == t);
                    st.ahead.clear();
                    if clean
                        || !next_pass(
                            &mut st.pass,
                            &mut st.page,
                            &mut st.pass_ids,
                            &mut st.pass_total,
                            &mut st.pass_stable,
                            st.list.resource,
                        )?
                    {
                        st.done = true;
                    }
                } else {
                    st.page += 1;
                    if let Some(t) = total {
                        st.list.read_ahead(&mut st.ahead, st.page, t);
                    }
                }
                if !fresh.is_empty() {
                    return Ok(Some((fresh, st)));
                }
            }
        })
        .map_ok(|v| futures::stream::iter(v.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Reads the whole list.
    pub async fn collect(self) -> Result<Vec<T>> {
        self.stream().try_collect().await
    }
}

fn next_pass(
    pass: &mut u32,
    page: &mut u32,
    ids: &mut HashSet<String>,
    total: &mut Option<usize>,
    stable: &mut bool,
    resource: &str,
) -> Result<bool> {
    if *pass >= MAX_PASSES {
        return Err(Error::Unstable {
            resource: resource.to_string(),
            detail: format!("{MAX_PASSES} passes never saw a consistent list; retry when fewer changes are being made"),
        });
    }
    tracing::debug!(resource, pass = *pass, "list changed while reading; reading it again");
    *pass += 1;
    *page = 1;
    ids.clear();
    *total = None;
    *stable = true;
    Ok(true)
}
