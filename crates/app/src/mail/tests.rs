//! The worker over the test kit's memory outbox: with files, with an SMTP server that is
//! not there, and (under `smtp`) with the test SMTP server of `cargo xtask test`.

use std::{sync::Arc, time::Duration};

use auth_domain::{
    clock::Clock,
    mail::{Mail, MailStatus, Outbox, OutboxEntry, Templates},
    seal::Seal,
    tokens::TokenSecret,
    work::{Change, Work},
    Email, Stores as _,
};
use auth_testkit::{memory_stores::MemoryStores, process::free_port, TempDir};
use secrecy::SecretString;
use tokio::sync::Notify;

use super::*;

/// Long enough for any send on a loaded machine; only a failing test waits it out.
const PATIENCE: Duration = Duration::from_secs(20);

fn from() -> Mailbox {
    "auth-service <no-reply@localhost>".parse().expect("valid")
}

/// An address no other test sends to: every test shares the one SMTP sink.
fn fresh_address() -> Email {
    Email::parse(&format!("{}@example.com", uuid::Uuid::now_v7().simple())).expect("valid")
}

fn reset_mail(clock: &Clock, to: &Email) -> (Mail, TokenSecret) {
    let token = TokenSecret::generate();
    let mail = Templates::new("http://127.0.0.1:5000").password_reset(
        to,
        &token,
        time::Duration::hours(1),
        clock.now(),
    );
    (mail, token)
}

async fn enqueue(stores: &MemoryStores, mail: Mail) {
    stores
        .commit(Work::new().then(Change::Enqueue(mail)))
        .await
        .expect("queued");
}

fn smtp(url: &str) -> Transport {
    Transport::smtp(&SmtpUrl::new(SecretString::from(url.to_owned()))).expect("a valid URL")
}

fn entry(stores: &MemoryStores, mail: &Mail) -> OutboxEntry {
    stores
        .outbox()
        .entries()
        .into_iter()
        .find(|entry| entry.mail.id == mail.id)
        .expect("in the outbox")
}

/// Quick retries, and an idle worker that only a wake gets going.
fn settings(max_attempts: u32) -> WorkerSettings {
    WorkerSettings {
        poll: Duration::from_secs(3600),
        backoff: Backoff {
            first: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            max_attempts,
        },
        ..WorkerSettings::default()
    }
}

#[tokio::test]
async fn without_smtp_a_mail_is_written_to_mail_dir_as_an_eml_file() {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    let dir = TempDir::new("mail-dir");
    let mail_dir = dir.path().join("mail");
    let transport = Transport::files(&mail_dir).expect("created");
    assert!(transport.is_files());
    let worker = OutboxWorker::new(
        stores.outbox().clone(),
        transport,
        from(),
        clock.clone(),
        Arc::default(),
    );
    let to = fresh_address();
    let (mail, token) = reset_mail(&clock, &to);
    enqueue(&stores, mail.clone()).await;

    assert_eq!(worker.run_once().await.expect("leased"), 1);

    assert_eq!(entry(&stores, &mail).status, MailStatus::Sent);
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .expect("readable")
        .map(|file| file.expect("listed").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].extension().and_then(|e| e.to_str()),
        Some("eml"),
        "{files:?}"
    );
    let eml = std::fs::read_to_string(&files[0]).expect("readable");
    assert!(eml.contains(&format!("Message-ID: <{}@localhost>", mail.id)));
    let received = auth_testkit::mailbox::parse_message(eml.as_bytes()).expect("a message");
    assert_eq!(received.token(), Some(token.expose()));
    assert_eq!(worker.run_once().await.expect("nothing due"), 0);
}

#[tokio::test]
async fn a_sealed_body_is_opened_to_be_sent_and_one_no_key_opens_fails_at_once() {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    let dir = TempDir::new("mail-dir");
    let seal = Seal::new(&[4; 32], &[]);
    let worker = OutboxWorker::new(
        stores.outbox().clone(),
        Transport::files(dir.path()).expect("created"),
        from(),
        clock.clone(),
        Arc::default(),
    )
    .with_seal(seal.clone());
    let (mut opened, token) = reset_mail(&clock, &fresh_address());
    opened.body = seal.seal(&opened.body);
    enqueue(&stores, opened.clone()).await;
    let (mut stranger, _) = reset_mail(&clock, &fresh_address());
    stranger.body = Seal::new(&[5; 32], &[]).seal(&stranger.body);
    enqueue(&stores, stranger.clone()).await;

    assert_eq!(worker.run_once().await.expect("leased"), 2);

    assert_eq!(entry(&stores, &opened).status, MailStatus::Sent);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("readable")
        .map(|file| file.expect("listed").path())
        .collect();
    assert_eq!(files.len(), 1, "only the one that opened: {files:?}");
    let eml = std::fs::read_to_string(&files[0]).expect("readable");
    let received = auth_testkit::mailbox::parse_message(eml.as_bytes()).expect("a message");
    assert_eq!(received.token(), Some(token.expose()), "sent opened");
    let failed = entry(&stores, &stranger);
    assert_eq!(
        failed.status,
        MailStatus::Failed,
        "no key will ever open it"
    );
    assert_eq!(failed.attempts, 1);
}

#[tokio::test]
async fn a_woken_worker_sends_at_once_without_waiting_for_its_poll() {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    let dir = TempDir::new("mail-dir");
    let wake = Arc::new(Notify::new());
    let running = OutboxWorker::new(
        stores.outbox().clone(),
        Transport::files(dir.path()).expect("created"),
        from(),
        clock.clone(),
        wake.clone(),
    )
    .with_settings(settings(3))
    .spawn();
    // Its first round finds nothing; then it waits an hour unless woken.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mail, _) = reset_mail(&clock, &fresh_address());
    enqueue(&stores, mail.clone()).await;
    wake.notify_one();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while entry(&stores, &mail).status != MailStatus::Sent {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent when woken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_mail_the_server_never_takes_is_retried_with_backoff_then_marked_failed() {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    // A port nothing listens on: every connection is refused.
    let nowhere = smtp(&format!("smtp://127.0.0.1:{}", free_port()));
    let worker = OutboxWorker::new(
        stores.outbox().clone(),
        nowhere,
        from(),
        clock.clone(),
        Arc::default(),
    )
    .with_settings(settings(3));
    let (mail, _) = reset_mail(&clock, &fresh_address());
    enqueue(&stores, mail.clone()).await;

    assert_eq!(worker.run_once().await.expect("leased"), 1);
    let first = entry(&stores, &mail);
    assert_eq!((first.status, first.attempts), (MailStatus::Pending, 1));
    assert!(first.last_error.is_some());
    assert!(!first.last_error.unwrap_or_default().contains(&mail.body));
    // Not due again before its backoff.
    assert_eq!(worker.run_once().await.expect("nothing due"), 0);

    clock.advance(Duration::from_secs(5));
    assert_eq!(worker.run_once().await.expect("leased"), 1);
    assert_eq!(entry(&stores, &mail).attempts, 2);
    clock.advance(Duration::from_secs(5));
    assert_eq!(worker.run_once().await.expect("not yet"), 0);
    clock.advance(Duration::from_secs(5));
    assert_eq!(worker.run_once().await.expect("leased"), 1);

    let last = entry(&stores, &mail);
    assert_eq!((last.status, last.attempts), (MailStatus::Failed, 3));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(worker.run_once().await.expect("nothing due"), 0);
    assert_eq!(stores.outbox().pending().await.expect("counted"), 0);
}

#[tokio::test]
async fn a_stopped_worker_ends_promptly() {
    let clock = Clock::adjustable();
    let stores = MemoryStores::new(clock.clone());
    let dir = TempDir::new("mail-dir");
    let running = OutboxWorker::new(
        stores.outbox().clone(),
        Transport::files(dir.path()).expect("created"),
        from(),
        clock,
        Arc::default(),
    )
    .with_settings(settings(3))
    .spawn();
    tokio::time::timeout(
        Duration::from_secs(5),
        running.stop(Duration::from_secs(10)),
    )
    .await
    .expect("stopped at once, not after its hour-long poll");
}

/// Against the test SMTP server that `cargo xtask test` starts (skipped without one).
mod smtp {
    use auth_testkit::{mailbox, Mailbox as Sink, SmtpRelay};

    use super::*;

    #[tokio::test]
    async fn a_mail_is_delivered_once_with_its_id_and_token() {
        let sink = Sink::from_env();
        let clock = Clock::adjustable();
        let stores = MemoryStores::new(clock.clone());
        let wake = Arc::new(Notify::new());
        let running = OutboxWorker::new(
            stores.outbox().clone(),
            smtp(&mailbox::smtp_url()),
            from(),
            clock.clone(),
            wake.clone(),
        )
        .with_settings(settings(3))
        .spawn();
        let to = fresh_address();
        let (mail, token) = reset_mail(&clock, &to);
        enqueue(&stores, mail.clone()).await;
        wake.notify_one();

        let received = sink.wait_for(to.as_str(), 1, PATIENCE).await;
        let received = &received[0];
        assert_eq!(received.from, "no-reply@localhost");
        assert_eq!(received.subject, mail.subject);
        assert_eq!(received.token(), Some(token.expose()));
        assert_eq!(
            received.message_id.as_deref(),
            Some(format!("{}@localhost", mail.id).as_str())
        );
        // More rounds send nothing more.
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sink.messages_to(to.as_str()).len(), 1);
        assert_eq!(entry(&stores, &mail).status, MailStatus::Sent);
        running.stop(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn mail_written_during_an_smtp_outage_arrives_once_the_server_is_back() {
        let sink = Sink::from_env();
        let relay = SmtpRelay::to_url(&mailbox::smtp_url()).await;
        let clock = Clock::adjustable();
        let stores = MemoryStores::new(clock.clone());
        let worker = OutboxWorker::new(
            stores.outbox().clone(),
            smtp(&relay.url()),
            from(),
            clock.clone(),
            Arc::default(),
        )
        .with_settings(settings(8));
        let to = fresh_address();
        let (mail, _) = reset_mail(&clock, &to);
        enqueue(&stores, mail.clone()).await;

        relay.down();
        assert_eq!(worker.run_once().await.expect("leased"), 1);
        let failed = entry(&stores, &mail);
        assert_eq!((failed.status, failed.attempts), (MailStatus::Pending, 1));
        assert!(sink.messages_to(to.as_str()).is_empty());

        relay.up();
        clock.advance(Duration::from_secs(5));
        assert_eq!(worker.run_once().await.expect("leased"), 1);
        assert_eq!(entry(&stores, &mail).status, MailStatus::Sent);
        sink.wait_for(to.as_str(), 1, PATIENCE).await;
        assert_eq!(sink.messages_to(to.as_str()).len(), 1);
    }

    #[tokio::test]
    async fn two_workers_on_one_outbox_send_every_mail_exactly_once() {
        const MAILS: usize = 30;
        let sink = Sink::from_env();
        let clock = Clock::adjustable();
        let stores = MemoryStores::new(clock.clone());
        let wake = Arc::new(Notify::new());
        let tiny_batches = WorkerSettings {
            batch: 2,
            ..settings(3)
        };
        let workers: Vec<RunningWorker> = (0..2)
            .map(|_| {
                OutboxWorker::new(
                    stores.outbox().clone(),
                    smtp(&mailbox::smtp_url()),
                    from(),
                    clock.clone(),
                    wake.clone(),
                )
                .with_settings(tiny_batches)
                .spawn()
            })
            .collect();
        let addresses: Vec<Email> = (0..MAILS).map(|_| fresh_address()).collect();
        for to in &addresses {
            enqueue(&stores, reset_mail(&clock, to).0).await;
            wake.notify_waiters();
        }
        wake.notify_waiters();

        for to in &addresses {
            sink.wait_for(to.as_str(), 1, PATIENCE).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for to in &addresses {
            assert_eq!(sink.messages_to(to.as_str()).len(), 1, "{to}");
        }
        assert_eq!(stores.outbox().pending().await.expect("counted"), 0);
        for worker in workers {
            worker.stop(Duration::from_secs(5)).await;
        }
    }
}
