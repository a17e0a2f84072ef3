//! A deadline on writes: a client that stops reading its answer (and so lets the socket's
//! send buffer fill) is disconnected after `WRITE_TIMEOUT` instead of holding its
//! connection slot for as long as it likes. hyper has a deadline for reading a request's
//! head, none for writing.

use std::{
    future::Future as _,
    io,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{sleep, Sleep},
};

/// `inner`, whose writes fail once one has made no progress for `timeout`. Unpin, as
/// hyper wants its transport: the timer is boxed, and only while a write waits.
pub(crate) struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Running while a write waits; cleared by every write that makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The outcome of a write's `poll` under the deadline: progress clears it, waiting
    /// starts or checks it.
    fn under_deadline<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let deadline = self.stalled.get_or_insert_with(|| Box::pin(sleep(timeout)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read its answer within WRITE_TIMEOUT",
        )))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.under_deadline(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.under_deadline(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.under_deadline(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_timeout_and_one_read_does_not() {
        let (client, server) = duplex(64);
        let mut server = WriteDeadline::new(server, Duration::from_millis(300));
        server.write_all(&[0; 64]).await.expect("fits the buffer");
        let stalled = server.write_all(&[0; 64]).await;
        assert_eq!(
            stalled.expect_err("nobody reads").kind(),
            io::ErrorKind::TimedOut
        );
        drop(client);
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        use tokio::io::AsyncReadExt as _;
        let (mut client, server) = duplex(64);
        let mut server = WriteDeadline::new(server, Duration::from_millis(300));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            while total < 640 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                total += client.read(&mut buf).await.expect("reads");
            }
            total
        });
        server
            .write_all(&[0; 640])
            .await
            .expect("each write makes progress in time");
        assert_eq!(reader.await.unwrap(), 640);
    }
}
