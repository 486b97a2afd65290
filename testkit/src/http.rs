//! A loopback HTTP/1.1 server that records every request and answers from a script.
//!
//! It speaks just enough HTTP for tests, and can misbehave on purpose: wait before
//! answering (timeouts), cut a body short (truncation), or close the connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query string.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Announce the full length but send only this many bytes, then close.
    pub truncate_at: Option<usize>,
    /// Close the connection without answering.
    pub hang_up: bool,
    /// Extra response headers (`Location`, `Retry-After`, ...).
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A Prometheus instant answer to `request` with healthy values (a confidence of 0.9, 5
    /// for every other query), stamped `at` (unix seconds) as Prometheus stamps its evaluation
    /// time.
    pub fn healthy_instant(request: &Request, at: i64) -> Self {
        let asked = format!("{}{}", request.path, request.text());
        let value = if asked.contains("model_prediction") {
            "0.9"
        } else {
            "5"
        };
        Reply::json(
            200,
            &format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{at},"{value}"]}}]}}}}"#
            ),
        )
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            truncate_at: None,
            hang_up: false,
            headers: Vec::new(),
        }
    }
    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Reply {
            content_type: "text/plain".into(),
            ..Reply::json(status, body)
        }
    }
    /// Waits before answering.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// A redirect with `status` (301, 302, 307, 308) to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Reply::text(status, "").with_header("Location", location)
    }
    /// Sends only the first `n` bytes of the body.
    pub fn truncated(mut self, n: usize) -> Self {
        self.truncate_at = Some(n);
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct State {
    requests: Vec<Request>,
    queue: VecDeque<Reply>,
}

/// The server. It runs on the current tokio runtime until dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Answers every request with `handler`, unless replies are queued with [`Server::push`].
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            queue: VecDeque::new(),
        }));
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, state, handler).await;
                    });
                }
            })
        };
        Server { url, state, task }
    }

    /// A receiver that answers 200 `ok` to everything.
    pub async fn receiver() -> Server {
        Server::start(|_| Reply::text(200, "ok")).await
    }

    /// Queues a reply for the next request (before the handler is asked).
    pub fn push(&self, reply: Reply) {
        self.state.lock().unwrap().queue.push_back(reply);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    handler: Arc<Handler>,
) -> std::io::Result<()> {
    loop {
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let mut chunk = vec![0u8; length - body.len()];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let request = Request {
            method,
            path,
            headers,
            body,
        };
        let reply = {
            let mut s = state.lock().unwrap();
            s.requests.push(request.clone());
            s.queue.pop_front()
        }
        .unwrap_or_else(|| handler(&request));
        tokio::time::sleep(reply.delay).await;
        if reply.hang_up {
            return Ok(());
        }
        let extra: String = reply
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}\r\n",
            reply.status,
            reply.content_type,
            reply.body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        match reply.truncate_at {
            Some(n) => {
                stream
                    .write_all(&reply.body[..n.min(reply.body.len())])
                    .await?;
                stream.shutdown().await?;
                return Ok(());
            }
            None => stream.write_all(&reply.body).await?,
        }
    }
}
