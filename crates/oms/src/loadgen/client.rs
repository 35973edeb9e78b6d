//! One keep-alive HTTP/1.1 connection, driven by the task that sends on it.
//!
//! The load generator shares the machine with the server it measures, so what it spends per
//! request is taken from the server. hyper's client runs each connection as a task of its own
//! and hands every request and response across a channel: two extra task wake-ups per
//! request. Here the sending task writes the request and reads the response itself; `httparse`
//! reads the response head. A body must come with a `Content-Length` (every response the load
//! generator asks for does; chunked ones are refused with an error), except after a 204 or a
//! 304, which have none; 1xx heads are skipped. A connection the server closes while idle is
//! noticed by the next request, which then fails.

use anyhow::{bail, Context, Result};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    input: Vec<u8>,
    output: Vec<u8>,
    /// The server said `Connection: close`: no further request may be sent.
    closed: bool,
}

pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the head of a complete response says.
#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    body_len: usize,
    close: bool,
}

impl Connection {
    pub async fn open(addr: &str) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(1024),
            closed: false,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends one request (`headers` besides `Host` and `Content-Length`) and reads its
    /// response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        if self.closed {
            bail!("the server closed this connection");
        }
        self.output.clear();
        write!(self.output, "{method} {path} HTTP/1.1\r\nhost: {host}\r\n")?;
        for (name, value) in headers {
            write!(self.output, "{name}: {value}\r\n")?;
        }
        write!(self.output, "content-length: {}\r\n\r\n", body.len())?;
        self.output.extend_from_slice(body);
        self.stream.write_all(&self.output).await?;

        let head = loop {
            match parse_head(&self.input)? {
                // An interim response (100 Continue): the real one follows.
                Some(head) if (100..200).contains(&head.status) => {
                    self.input.drain(..head.len);
                }
                Some(head) => break head,
                None => self.fill().await?,
            }
        };
        let end = head.len + head.body_len;
        while self.input.len() < end {
            self.fill().await?;
        }
        let body = self.input[head.len..end].to_vec();
        self.input.drain(..end);
        self.closed = head.close;
        Ok(Response {
            status: head.status,
            body,
        })
    }

    async fn fill(&mut self) -> Result<()> {
        self.input.reserve(4096);
        if self.stream.read_buf(&mut self.input).await? == 0 {
            self.closed = true;
            bail!("the server closed the connection mid-response");
        }
        Ok(())
    }
}

/// The response head at the start of `input`, once all of it has arrived.
fn parse_head(input: &[u8]) -> Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(input)? else {
        return Ok(None);
    };
    let status = response.code.context("response without a status")?;
    let (mut body_len, mut close) = (None, false);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .context("malformed Content-Length")?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a response without Content-Length (Transfer-Encoding) is not supported");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let body_len = match status {
        100..=199 | 204 | 304 => 0,
        _ => body_len.context("response without Content-Length")?,
    };
    Ok(Some(Head {
        len,
        status,
        body_len,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_once_complete() {
        let full = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(parse_head(&full[..20]).unwrap().is_none());
        let head = parse_head(full).unwrap().unwrap();
        assert_eq!((head.status, head.body_len, head.close), (202, 2, false));
        assert_eq!(&full[head.len..head.len + head.body_len], b"{}");
    }

    #[test]
    fn close_and_missing_length_are_seen() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.close);
        let chunked = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(chunked.is_err());
        let none = parse_head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(none.unwrap_err().to_string().contains("Content-Length"));
        for bodiless in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let head = format!("HTTP/1.1 {bodiless}\r\n\r\n");
            assert_eq!(parse_head(head.as_bytes()).unwrap().unwrap().body_len, 0);
        }
    }

    /// Against a real server (axum, as `oms serve` answers): many requests on one connection,
    /// a body larger than one read, and a server that closes after its answer.
    #[tokio::test]
    async fn requests_and_responses_follow_each_other_on_one_connection() {
        use axum::http::{header, StatusCode};
        use axum::routing::{get, post};
        let app = axum::Router::new()
            .route(
                "/echo",
                post(|body: String| async move { (StatusCode::ACCEPTED, body) }),
            )
            .route("/big", get(|| async { "x".repeat(200_000) }))
            .route("/nothing", get(|| async { StatusCode::NO_CONTENT }))
            .route(
                "/bye",
                get(|| async { ([(header::CONNECTION, "close")], "bye") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut conn = Connection::open(&addr).await.unwrap();
        for i in 0..50 {
            let body = format!("{{\"n\":{i}}}");
            let r = conn
                .request(
                    "POST",
                    "/echo",
                    &addr,
                    &[("x-api-key", "k")],
                    body.as_bytes(),
                )
                .await
                .unwrap();
            assert_eq!((r.status, r.body), (202, body.into_bytes()));
        }
        let big = conn.request("GET", "/big", &addr, &[], b"").await.unwrap();
        assert_eq!((big.status, big.body.len()), (200, 200_000));
        let nothing = conn
            .request("GET", "/nothing", &addr, &[], b"")
            .await
            .unwrap();
        assert_eq!((nothing.status, nothing.body.len()), (204, 0));
        let missing = conn
            .request("GET", "/nowhere", &addr, &[], b"")
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
        assert!(!conn.is_closed());
        let bye = conn.request("GET", "/bye", &addr, &[], b"").await.unwrap();
        assert_eq!(bye.body, b"bye");
        assert!(conn.is_closed());
        assert!(conn.request("GET", "/big", &addr, &[], b"").await.is_err());
    }
}
