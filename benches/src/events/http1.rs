//! The generator's HTTP/1.1 client: keep-alive connections over `TcpStream` and a pool that
//! opens a new one whenever none is idle, so that a request never waits for another's answer.

use super::*;

/// One keep-alive connection.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) buf: Vec<u8>,
}

/// One parsed answer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) accepted: u64,
    pub(super) duplicates: u64,
    pub(super) rejected: u64,
    /// The server asked to close the connection.
    pub(super) close: bool,
}

/// Why an exchange failed, and whether anything of an answer arrived.
pub(super) struct ExchangeError {
    pub(super) error: anyhow::Error,
    pub(super) got_bytes: bool,
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number after `"key":` in a JSON text (the answer's counters), 0 when absent.
pub(super) fn json_count(body: &[u8], key: &str) -> u64 {
    let needle = format!("\"{key}\"");
    let Some(p) = find(body, needle.as_bytes()) else {
        return 0;
    };
    let rest = &body[p + needle.len()..];
    let digits: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == b':')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().unwrap_or(0)
}

impl Conn {
    pub(super) async fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Reads more bytes into the buffer; fails on end of stream.
    pub(super) async fn fill(&mut self) -> Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Sends one request and reads its whole answer.
    pub(super) async fn exchange(&mut self, request: &[u8]) -> Result<Answer, ExchangeError> {
        let fail = |error: anyhow::Error, got_bytes: bool| ExchangeError { error, got_bytes };
        self.buf.clear();
        if let Err(e) = self.stream.write_all(request).await {
            return Err(fail(e.into(), false));
        }
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(fail(anyhow::anyhow!("answer head too long"), true));
            }
            let had = !self.buf.is_empty();
            if let Err(e) = self.fill().await {
                return Err(fail(e, had));
            }
        };
        let (mut answer, length, chunked) = match parse_head(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(e) => return Err(fail(e, true)),
        };
        let body: Vec<u8> = if let Some(len) = length {
            if len > MAX_ANSWER_BYTES {
                return Err(fail(anyhow::anyhow!("answer body too long"), true));
            }
            while self.buf.len() < head_end + len {
                if let Err(e) = self.fill().await {
                    return Err(fail(e, true));
                }
            }
            self.buf[head_end..head_end + len].to_vec()
        } else if chunked {
            match self.read_chunked(head_end).await {
                Ok(b) => b,
                Err(e) => return Err(fail(e, true)),
            }
        } else {
            // Delimited by the end of the connection.
            answer.close = true;
            loop {
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => break,
                    Ok(_) if self.buf.len() <= MAX_ANSWER_BYTES => {}
                    Ok(_) => return Err(fail(anyhow::anyhow!("answer body too long"), true)),
                    Err(e) => return Err(fail(e.into(), true)),
                }
            }
            self.buf[head_end..].to_vec()
        };
        answer.accepted = json_count(&body, "accepted");
        answer.duplicates = json_count(&body, "duplicates");
        answer.rejected = json_count(&body, "rejected");
        Ok(answer)
    }

    /// Decodes a chunked body that starts at `at` in the buffer.
    pub(super) async fn read_chunked(&mut self, mut at: usize) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = find(&self.buf[at..], b"\r\n") {
                    break at + p;
                }
                self.fill().await?;
            };
            let line = std::str::from_utf8(&self.buf[at..line_end])?;
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .with_context(|| format!("bad chunk size `{size_hex}`"))?;
            at = line_end + 2;
            if size == 0 {
                // Trailers (none expected), then the final CRLF.
                loop {
                    if let Some(p) = find(&self.buf[at..], b"\r\n") {
                        if p == 0 {
                            return Ok(body);
                        }
                        at += p + 2;
                        continue;
                    }
                    self.fill().await?;
                }
            }
            if body.len() + size > MAX_ANSWER_BYTES {
                bail!("answer body too long");
            }
            while self.buf.len() < at + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

/// Status, Content-Length, chunked; `close` when the server ends the connection.
pub(super) fn parse_head(head: &[u8]) -> Result<(Answer, Option<usize>, bool)> {
    let text = std::str::from_utf8(head).context("answer head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x answer: `{}`", status_line.trim());
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line `{}`", status_line.trim()))?;
    let mut answer = Answer {
        status,
        close: version == "HTTP/1.0",
        ..Answer::default()
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                answer.close = true;
            } else if v.contains("keep-alive") {
                answer.close = false;
            }
        }
    }
    if chunked {
        length = None;
    }
    Ok((answer, length, chunked))
}

/// Idle keep-alive connections (last in, first out) and a cap on how many exist.
pub(super) struct Pool {
    pub(super) addr: String,
    pub(super) idle: Mutex<Vec<Conn>>,
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    pub(super) opened: AtomicU64,
    pub(super) busy: AtomicU64,
    pub(super) peak_busy: AtomicU64,
}

impl Pool {
    pub(super) fn take(&self) -> Option<Conn> {
        self.idle.lock().ok().and_then(|mut v| v.pop())
    }

    pub(super) fn give(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
    }
    pub(super) async fn open(&self) -> Result<Conn> {
        let c = Conn::open(&self.addr).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_counts() {
        let (a, len, chunked) = parse_head(
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n",
        )
        .expect("head");
        assert_eq!(a.status, 202);
        assert_eq!(len, Some(42));
        assert!(!chunked && !a.close);
        let (a, len, chunked) = parse_head(
            b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .expect("head");
        assert_eq!((a.status, len, chunked, a.close), (503, None, true, true));
        let body = br#"{"accepted":3,"duplicates": 1,"rejected":0,"results":[]}"#;
        assert_eq!(json_count(body, "accepted"), 3);
        assert_eq!(json_count(body, "duplicates"), 1);
        assert_eq!(json_count(body, "rejected"), 0);
    }

    #[tokio::test]
    async fn chunked_answers_are_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n\
                      6\r\n{\"acce\r\n8\r\npted\":7}\r\n0\r\n\r\n",
                )
                .await;
        });
        let mut c = Conn::open(&addr).await.expect("connect");
        let a = c.exchange(b"POST / HTTP/1.1\r\n\r\n").await;
        let a = a.map_err(|e| e.error).expect("answer");
        assert_eq!((a.status, a.accepted), (202, 7));
    }
}
