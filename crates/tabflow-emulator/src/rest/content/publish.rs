//! What workbooks and datasources share: derived connection ids, file downloads, revision
//! lists, the publish parameters of a multipart request, and the jobs publishing starts.

use super::*;

/// A stable LUID-shaped id derived from another id and an index.
pub(super) fn derived_id(base: &str, n: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in base.bytes().chain(n.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let h2 = h.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        h2 >> 48,
        h2 & 0xffff_ffff_ffff
    )
}

pub(super) fn file_response(kind: &str, filename: &str, data: Vec<u8>) -> axum::response::Response {
    let mut r = (StatusCode::OK, data).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&crate::content::content_disposition(kind, filename)) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// A download of `size` filler bytes ([`crate::server::large_file_byte`]) generated in 1 MiB
/// pieces as the client reads them, with its `Content-Length`.
pub(super) fn large_file_response(filename: &str, size: u64) -> axum::response::Response {
    struct Filler {
        at: u64,
        size: u64,
    }
    impl futures_core::Stream for Filler {
        type Item = Result<Vec<u8>, std::convert::Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.at >= self.size {
                return std::task::Poll::Ready(None);
            }
            let end = (self.at + (1 << 20)).min(self.size);
            let piece: Vec<u8> = (self.at..end).map(crate::server::large_file_byte).collect();
            self.at = end;
            std::task::Poll::Ready(Some(Ok(piece)))
        }
    }
    let body = axum::body::Body::from_stream(Filler { at: 0, size });
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&crate::content::content_disposition("tableau_workbook", filename)) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

pub(super) fn revision_list(
    st: &State,
    id: &str,
    current: u32,
    published: chrono::DateTime<Utc>,
    owner: &str,
    size: u64,
) -> Vec<Revision> {
    let mut revs = st.revisions.get(id).cloned().unwrap_or_default();
    // Revisions before the emulator saw a publish are synthesized from the model's count.
    let known: Vec<u32> = revs.iter().map(|r| r.number).collect();
    for n in 1..=current {
        if !known.contains(&n) {
            revs.push(Revision {
                number: n,
                published_at: published,
                publisher_id: owner.to_string(),
                size,
                file: None,
            });
        }
    }
    revs.sort_by_key(|r| r.number);
    revs
}

pub(super) fn revisions_xml(revs: &[Revision], current: u32) -> xml::Revisions {
    xml::Revisions {
        revision: revs
            .iter()
            .map(|r| xml::Revision {
                revision_number: r.number.to_string(),
                published_at: Some(ts(r.published_at)),
                deleted: Some("false".into()),
                current: Some(xml::bool_str(r.number == current)),
                size_in_bytes: Some(r.size.to_string()),
                publisher: Some(xml::IdRef::id(r.publisher_id.clone())),
            })
            .collect(),
    }
}

/// Publish parameters common to workbooks and datasources.
pub(super) struct Publish {
    pub(super) name: String,
    pub(super) project_id: String,
    pub(super) description: Option<String>,
    pub(super) show_tabs: Option<bool>,
    pub(super) filename: String,
    pub(super) data: Vec<u8>,
    pub(super) overwrite: bool,
    pub(super) as_job: bool,
}

pub(super) fn read_publish(
    st: &State,
    headers: &HeaderMap,
    body: &[u8],
    q: &[(String, String)],
    file_part: &str,
    kind: &str,
) -> Result<Publish, Fail> {
    let param = |k: &str| q.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    let flag = |k: &str| param(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts = crate::content::parse_multipart(ct, body).map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let payload = parts
        .iter()
        .find(|p| p.name == "request_payload")
        .ok_or_else(|| Fail(ApiError::bad_request("The multipart body has no request_payload part.")))?;
    let req = parse_body(&String::from_utf8_lossy(&payload.data))?;
    let (name, project, description, show_tabs) = if kind == "workbook" {
        let w = req.workbook.ok_or_else(|| super::missing("a <workbook> element"))?;
        let st = xml::parse_bool(w.show_tabs.as_deref());
        (w.name, w.project.and_then(|p| p.id), w.description, st)
    } else {
        let d = req.datasource.ok_or_else(|| super::missing("a <datasource> element"))?;
        (d.name, d.project.and_then(|p| p.id), d.description, None)
    };
    let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| super::missing("a name"))?;
    let project_id = project.ok_or_else(|| super::missing("a <project id> element"))?;
    st.project(&project_id).map_err(Fail)?;
    let (filename, data) = if let Some(sid) = param("uploadSessionId") {
        let data =
            st.uploads.get(&sid).cloned().ok_or_else(|| Fail(ApiError::not_found("404008", "Upload session", &sid)))?;
        let ext = param(&format!("{kind}Type"))
            .unwrap_or_else(|| if kind == "workbook" { "twbx".into() } else { "tdsx".into() });
        (format!("{name}.{ext}"), data)
    } else {
        let file = parts
            .iter()
            .find(|p| p.name == file_part)
            .ok_or_else(|| Fail(ApiError::bad_request(format!("The multipart body has no {file_part} part."))))?;
        (
            file.filename
                .clone()
                .unwrap_or_else(|| format!("{name}.{}", if kind == "workbook" { "twb" } else { "tds" })),
            file.data.clone(),
        )
    };
    Ok(Publish {
        name,
        project_id,
        description,
        show_tabs,
        filename,
        data,
        overwrite: flag("overwrite"),
        as_job: flag("asJob"),
    })
}

/// A publish consumes its upload session (as on Tableau): its bytes are freed.
pub(super) fn consume_upload(st: &mut State, q: &[(String, String)]) {
    if let Some((_, sid)) = q.iter().find(|(n, _)| n.eq_ignore_ascii_case("uploadSessionId")) {
        st.uploads.remove(sid);
    }
}

pub(super) fn misc_job(st: &mut State, kind: &str) -> xml::Job {
    let id = new_luid();
    let now = Utc::now();
    st.jobs
        .insert(id.clone(), crate::state::Job { id: id.clone(), kind: kind.into(), created_at: now, finish_code: 0 });
    xml::Job {
        id,
        mode: Some("Asynchronous".into()),
        kind: Some(kind.into()),
        created_at: Some(ts(now)),
        ..xml::Job::default()
    }
}
