//! The body of a fenced write: refuses to be sent once its claim's deadline has passed,
//! checked by the connection itself, right before the request's first byte is written.
//!
//! [`Client::send`](crate::client::Client::send) compares the deadline a
//! [`WriteCheck`](crate::client::WriteCheck) gives before it hands the request to the HTTP
//! stack; a process paused (SIGSTOP, a VM freeze) or starved between that comparison and the
//! socket write would still send once it resumes — by then another worker may own the item.
//! The connection's task asks the body two things right before it writes a request: HTTP/1
//! asks [`is_end_stream`](http_body::Body::is_end_stream) just before it buffers the head and
//! polls the first frame before it flushes head and body together, in the same poll. Both
//! answers here compare the deadline again, so a deadline that passed in the meantime fails
//! the request before any of its bytes leave: an empty body then claims to have a frame
//! (chunked) and that frame is the error, and hyper drops a connection whose request body
//! failed without flushing what it buffered. What is left is the instant between the last
//! comparison and the write system call, not a task switch or a connection set-up.
//! (Over HTTP/2 the HEADERS frame is queued right after `is_end_stream`, and a body that
//! fails resets the stream before the request is complete.)

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The deadline passed before the connection wrote the request: nothing of it was sent.
#[derive(Debug)]
pub(crate) struct TooLate {
    late: Duration,
}

impl std::fmt::Display for TooLate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the claim's deadline passed {} ms before the connection could write the request (the process was paused or starved); the write was not sent",
            self.late.as_millis()
        )
    }
}

impl std::error::Error for TooLate {}

/// `data` (possibly empty) to be sent before `deadline`, or not at all.
pub(crate) struct SendBy {
    data: Bytes,
    deadline: Instant,
    /// The data was handed over: the deadline no longer matters.
    sent: bool,
}

impl SendBy {
    pub(crate) fn new(data: Bytes, deadline: Instant) -> SendBy {
        SendBy { data, deadline, sent: false }
    }

    fn late(&self) -> Option<Duration> {
        let now = Instant::now();
        (!self.sent && now >= self.deadline).then(|| now - self.deadline)
    }
}

impl http_body::Body for SendBy {
    type Data = Bytes;
    type Error = TooLate;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, TooLate>>> {
        let this = self.get_mut();
        if let Some(late) = this.late() {
            return Poll::Ready(Some(Err(TooLate { late })));
        }
        if this.sent {
            return Poll::Ready(None);
        }
        this.sent = true;
        let data = std::mem::take(&mut this.data);
        Poll::Ready((!data.is_empty()).then(|| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        if self.sent {
            return true;
        }
        // No body and in time: the head goes out now, in this poll. Past the deadline:
        // claims a frame, so the connection polls for it and fails.
        self.data.is_empty() && self.late().is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.sent {
            return SizeHint::with_exact(0);
        }
        match self.late() {
            // Unknown length: never a `Content-Length: 0` that would let the head go alone.
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(self.data.len() as u64),
        }
    }
}

/// The [`TooLate`] in an error's chain of causes, if a fenced body refused to be sent.
pub(crate) fn too_late(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut src = Some(e);
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<TooLate>() {
            return Some(t.to_string());
        }
        src = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that records every byte each connection sends and answers 200 once it has a
    /// request's head (and its Content-Length body), then closes.
    async fn recorder() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                            Ok(Ok(n)) => n,
                            _ => 0,
                        };
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_lowercase();
                        let complete = text.find("\r\n\r\n").is_some_and(|end| {
                            let len = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            got.len() >= end + 4 + len
                        });
                        if complete {
                            let _ =
                                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        }
                        if n == 0 || complete {
                            break;
                        }
                    }
                    let _ = tx.send(got);
                });
            }
        });
        (url, rx)
    }

    async fn send(url: &str, method: reqwest::Method, data: &'static [u8], deadline: Instant) -> reqwest::Result<u16> {
        let http = reqwest::Client::builder().http1_only().build().unwrap();
        let body = reqwest::Body::wrap(SendBy::new(Bytes::from_static(data), deadline));
        http.request(method, format!("{url}/api/3.24/sites/s/workbooks/w"))
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    }

    #[tokio::test]
    async fn a_write_past_its_deadline_sends_not_one_byte_and_one_in_time_is_sent_whole() {
        let (url, mut rx) = recorder().await;
        let past = Instant::now() - Duration::from_millis(5);
        for (method, data) in
            [(reqwest::Method::PUT, &b"<tsRequest><workbook/></tsRequest>"[..]), (reqwest::Method::DELETE, b"")]
        {
            let e = send(&url, method.clone(), data, past).await.expect_err("a write past its deadline fails");
            let why = too_late(&e).unwrap_or_else(|| panic!("{method}: the error names the deadline: {e:?}"));
            assert!(why.contains("was not sent"), "{why}");
            let got = rx.recv().await.unwrap();
            assert!(got.is_empty(), "{method}: the server received {:?}", String::from_utf8_lossy(&got));
        }
        // In time: the same requests arrive whole, the empty one without a body at all.
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(send(&url, reqwest::Method::PUT, b"<tsRequest/>", later).await.unwrap(), 200);
        let got = String::from_utf8(rx.recv().await.unwrap()).unwrap().to_lowercase();
        assert!(
            got.starts_with("put /api/3.24/sites/s/workbooks/w ") && got.contains("content-length: 12\r\n"),
            "{got}"
        );
        assert!(got.ends_with("\r\n\r\n<tsrequest/>"), "{got}");
        assert_eq!(send(&url, reqwest::Method::DELETE, b"", later).await.unwrap(), 200);
        let got = String::from_utf8(rx.recv().await.unwrap()).unwrap().to_lowercase();
        assert!(got.starts_with("delete ") && got.ends_with("\r\n\r\n"), "{got}");
        assert!(!got.contains("transfer-encoding") && !got.contains("content-length: 0\r\n\r\n0"), "{got}");
    }

    #[test]
    fn once_its_data_is_handed_over_the_deadline_no_longer_matters() {
        use http_body::Body as _;
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut b = SendBy::new(Bytes::from_static(b"x"), Instant::now() + Duration::from_millis(30));
        assert!(!b.is_end_stream());
        assert_eq!(b.size_hint().exact(), Some(1));
        assert!(matches!(Pin::new(&mut b).poll_frame(&mut cx), Poll::Ready(Some(Ok(_)))));
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.is_end_stream());
        assert!(matches!(Pin::new(&mut b).poll_frame(&mut cx), Poll::Ready(None)));
        // Not handed over in time: an error, and an unknown length (never Content-Length: 0).
        let b = SendBy::new(Bytes::new(), Instant::now());
        assert!(!b.is_end_stream());
        assert_eq!(b.size_hint().exact(), None);
    }
}
