//! One Redis command over a fresh connection, in RESP, for the replica tests and `examples/replicas.rs`
//! (which includes this file): enough to read what the service left in Redis, without a client crate.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long connecting, and then the reply, may each take.
const WAIT: Duration = Duration::from_millis(500);

/// `args` as one command to the Redis on 127.0.0.1:`port`; the raw reply (at most `reply_bytes` of it,
/// one read), or `None` when Redis does not answer in time.
pub async fn command(port: u16, args: &[&str], reply_bytes: usize) -> Option<String> {
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    let mut s = tokio::time::timeout(WAIT, connect).await.ok()?.ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; reply_bytes];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}
