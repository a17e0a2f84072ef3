//! An SMTP outage on demand: a TCP relay in front of the shared test SMTP server that a
//! test turns down and up again, so that one test's outage stops no other test's mail.
//!
//! While up, the relay forwards bytes both ways between its client and the server. While
//! down, it answers every new connection `421` (the reply an SMTP server gives when it is
//! shutting down) and closes it; turning it down also cuts the connections it forwards,
//! so that a client's pooled connection fails as it would when the server goes away.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
};

use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

/// What a down relay answers before it closes the connection.
const UNAVAILABLE: &[u8] = b"421 4.3.2 Service not available, closing transmission channel\r\n";

/// A relay to an SMTP server on a free loopback port; stopped when dropped.
#[derive(Debug)]
pub struct SmtpRelay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl SmtpRelay {
    /// A relay, up, to the server at `upstream`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (up, watching) = watch::channel(true);
        let accepting = tokio::spawn(accept(listener, upstream, watching));
        Ok(Self {
            addr,
            up,
            accepting,
        })
    }

    /// A relay, up, to the server of an `smtp://host:port` URL (the test server's,
    /// [`crate::mailbox::smtp_url`]).
    ///
    /// # Panics
    ///
    /// When the URL names no reachable address, or no loopback port can be bound.
    pub async fn to_url(url: &str) -> Self {
        let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let upstream = parsed
            .socket_addrs(|| Some(25))
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{url} resolves to no address"));
        Self::start(upstream)
            .await
            .unwrap_or_else(|e| panic!("cannot start an SMTP relay: {e}"))
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://` and [`addr`](Self::addr): what the service's `SMTP_URL` is set to.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Refuses new connections with `421` and cuts the ones being forwarded.
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn up(&self) {
        self.up.send_replace(true);
    }

    /// Whether it forwards.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        // Its connections are in the task's `JoinSet`, aborted with it.
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, up: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        // Reap what has finished, so a long test does not hold every connection it made.
        while connections.try_join_next().is_some() {}
        let up = up.clone();
        connections.spawn(async move {
            if *up.borrow() {
                forward(client, upstream, up).await;
            } else {
                refuse(client).await;
            }
        });
    }
}

async fn refuse(mut client: TcpStream) {
    // The client may be gone already: nothing to do about it.
    let _ = client.write_all(UNAVAILABLE).await;
    let _ = client.shutdown().await;
}

/// Forwards until either side closes or the relay goes down.
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        refuse(client).await;
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server that greets and echoes one line.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bound");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream.write_all(b"220 echo\r\n").await;
                    let mut buf = [0; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        let _ = stream.write_all(&buf[..n]).await;
                    }
                });
            }
        });
        addr
    }

    async fn greeting(relay: &SmtpRelay) -> (TcpStream, String) {
        let mut stream = TcpStream::connect(relay.addr()).await.expect("connects");
        let mut buf = vec![0; 128];
        let n = stream.read(&mut buf).await.expect("reads");
        (stream, String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[tokio::test]
    async fn an_up_relay_forwards_and_a_down_one_answers_421_and_cuts_live_connections() {
        let relay = SmtpRelay::start(echo_server().await)
            .await
            .expect("started");
        assert!(relay.url().starts_with("smtp://127.0.0.1:"));

        let (mut live, hello) = greeting(&relay).await;
        assert_eq!(hello, "220 echo\r\n");
        live.write_all(b"NOOP\r\n").await.expect("writes");
        let mut buf = [0; 6];
        live.read_exact(&mut buf).await.expect("echoed");
        assert_eq!(&buf, b"NOOP\r\n");

        relay.down();
        assert!(!relay.is_up());
        let mut rest = Vec::new();
        let cut = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            live.read_to_end(&mut rest),
        )
        .await
        .expect("the live connection is cut");
        assert!(cut.is_err() || rest.is_empty(), "{rest:?}");
        let (mut refused, answer) = greeting(&relay).await;
        assert!(answer.starts_with("421 "), "{answer}");
        assert_eq!(refused.read(&mut [0; 8]).await.expect("closed"), 0);

        relay.up();
        let (_, hello) = greeting(&relay).await;
        assert_eq!(hello, "220 echo\r\n");
    }
}
