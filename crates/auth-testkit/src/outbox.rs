//! What every [`Outbox`] must do, with the [`Stores::commit`] that writes its mail.

use std::collections::HashSet;

use auth_domain::{
    mail::{Leased, Mail, MailStatus, Outbox, OutboxEntry, Templates},
    work::Change,
    Email, Stores,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::tokens::{commit, now};

/// How long this suite's leases last.
const LEASE: Duration = Duration::minutes(1);

/// A mail to `to`, written `at`.
pub fn mail(to: &str, at: OffsetDateTime) -> Mail {
    let to = Email::parse(to).expect("a valid test email");
    Templates::new("https://auth.example.com").password_changed(&to, at)
}

async fn enqueue(stores: &impl Stores, mails: &[&Mail]) {
    commit(
        stores,
        mails.iter().map(|mail| Change::Enqueue((*mail).clone())),
    )
    .await;
}

async fn lease(outbox: &impl Outbox, now: OffsetDateTime, limit: u32) -> Vec<Leased> {
    outbox
        .lease_due(now, LEASE, limit)
        .await
        .expect("leasing works")
}

async fn list(outbox: &impl Outbox, status: Option<MailStatus>, limit: u64) -> Vec<OutboxEntry> {
    outbox.list(status, limit).await.expect("listing works")
}

async fn entry(outbox: &impl Outbox, id: Uuid) -> OutboxEntry {
    list(outbox, None, 100)
        .await
        .into_iter()
        .find(|entry| entry.mail.id == id)
        .expect("the mail is in the outbox")
}

fn ids(leased: &[Leased]) -> Vec<Uuid> {
    leased.iter().map(|leased| leased.mail.id).collect()
}

/// Mail is leased when due, oldest first, as written, once: not again until its lease
/// ends, and then under a new lease.
pub async fn enqueued_mail_is_leased_once_until_its_lease_ends(stores: impl Stores) {
    let t = now();
    let older = mail("ada@example.com", t - Duration::seconds(2));
    let newer = mail("grace@example.com", t - Duration::seconds(1));
    let later = mail("alan@example.com", t + Duration::hours(1));
    enqueue(&stores, &[&newer, &later, &older]).await;
    assert_eq!(stores.outbox().pending().await.expect("count works"), 3);

    let leased = lease(stores.outbox(), t, 10).await;
    assert_eq!(ids(&leased), [older.id, newer.id], "due ones, oldest first");
    assert_eq!(leased[0].mail, older, "the mail as written");
    assert_eq!(leased[0].attempts, 0);
    assert_eq!(leased[0].until, t + LEASE);
    assert_ne!(leased[0].lease, leased[1].lease);

    assert!(lease(stores.outbox(), t + Duration::seconds(30), 10)
        .await
        .is_empty());
    let again = lease(stores.outbox(), t + LEASE, 1).await;
    assert_eq!(
        ids(&again),
        [older.id],
        "a lapsed lease frees the mail, the limit holds"
    );
    assert_ne!(again[0].lease, leased[0].lease);
    assert!(
        !stores
            .outbox()
            .mark_sent(&leased[0], t)
            .await
            .expect("settling works"),
        "the lapsed lease settles nothing"
    );
}

/// Only the holder of the current lease settles a mail; sent, it forgets its body and is
/// leased no more.
pub async fn only_the_lease_holder_marks_a_mail_sent_and_it_forgets_its_body(stores: impl Stores) {
    let t = now();
    let sent = mail("ada@example.com", t);
    enqueue(&stores, &[&sent]).await;
    let leased = lease(stores.outbox(), t, 10).await.remove(0);
    let stranger = Leased {
        lease: Uuid::now_v7(),
        ..leased.clone()
    };
    let outbox = stores.outbox();
    assert!(!outbox
        .mark_sent(&stranger, t)
        .await
        .expect("settling works"));
    let at = t + Duration::seconds(3);
    assert!(outbox.mark_sent(&leased, at).await.expect("settling works"));
    assert!(
        !outbox.mark_sent(&leased, at).await.expect("settling works"),
        "once"
    );

    let entry = entry(outbox, sent.id).await;
    assert_eq!(entry.status, MailStatus::Sent);
    assert_eq!(entry.sent_at, Some(at));
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.mail.body, "", "the body may hold a token: it is gone");
    assert_eq!(entry.mail.subject, sent.subject);
    assert!(lease(outbox, t + Duration::days(1), 10).await.is_empty());
    assert_eq!(outbox.pending().await.expect("count works"), 0);
}

/// A failed attempt makes the mail due again at its retry time, with the attempt counted
/// and the error kept.
pub async fn a_failed_attempt_is_due_again_at_its_retry_time(stores: impl Stores) {
    let t = now();
    let queued = mail("ada@example.com", t);
    enqueue(&stores, &[&queued]).await;
    let outbox = stores.outbox();
    let leased = lease(outbox, t, 10).await.remove(0);
    let retry_at = t + Duration::minutes(5);
    assert!(outbox
        .mark_attempt_failed(&leased, "451 4.3.0 try again later", Some(retry_at))
        .await
        .expect("settling works"));

    let pending = entry(outbox, queued.id).await;
    assert_eq!(pending.status, MailStatus::Pending);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.next_attempt_at, retry_at);
    assert_eq!(
        pending.last_error.as_deref(),
        Some("451 4.3.0 try again later")
    );
    assert_eq!(pending.mail.body, queued.body, "kept for the next attempt");
    assert!(lease(outbox, retry_at - Duration::seconds(1), 10)
        .await
        .is_empty());
    let again = lease(outbox, retry_at, 10).await;
    assert_eq!(ids(&again), [queued.id]);
    assert_eq!(again[0].attempts, 1);
}

/// A mail failed for good is never leased until `retry_failed` makes it pending again,
/// due at once with its attempts counted afresh.
pub async fn mail_failed_for_good_waits_for_retry_failed(stores: impl Stores) {
    let t = now();
    let first = mail("ada@example.com", t);
    let second = mail("grace@example.com", t + Duration::seconds(1));
    enqueue(&stores, &[&first, &second]).await;
    let outbox = stores.outbox();
    for leased in lease(outbox, t + Duration::seconds(1), 10).await {
        assert!(outbox
            .mark_attempt_failed(&leased, "550 5.1.1 no such user", None)
            .await
            .expect("settling works"));
    }
    assert_eq!(list(outbox, Some(MailStatus::Failed), 10).await.len(), 2);
    assert_eq!(outbox.pending().await.expect("count works"), 0);
    assert!(lease(outbox, t + Duration::days(1), 10).await.is_empty());

    let later = t + Duration::hours(1);
    assert_eq!(
        outbox
            .retry_failed(Some(Uuid::now_v7()), later)
            .await
            .expect("retry works"),
        0
    );
    assert_eq!(
        outbox
            .retry_failed(Some(first.id), later)
            .await
            .expect("retry works"),
        1
    );
    let retried = entry(outbox, first.id).await;
    assert_eq!(retried.status, MailStatus::Pending);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.next_attempt_at, later);
    assert_eq!(entry(outbox, second.id).await.status, MailStatus::Failed);
    assert_eq!(ids(&lease(outbox, later, 10).await), [first.id]);

    assert_eq!(
        outbox.retry_failed(None, later).await.expect("retry works"),
        1
    );
    assert_eq!(outbox.pending().await.expect("count works"), 2);
}

/// Mail is listed newest first, of one status or of all, up to the limit.
pub async fn mail_is_listed_newest_first_by_status_up_to_the_limit(stores: impl Stores) {
    let t = now();
    let mails: Vec<Mail> = (0..4)
        .map(|i| mail("ada@example.com", t + Duration::seconds(i)))
        .collect();
    enqueue(&stores, &mails.iter().collect::<Vec<_>>()).await;
    let outbox = stores.outbox();
    let sent = lease(outbox, t, 10).await.remove(0);
    assert_eq!(sent.mail.id, mails[0].id);
    assert!(outbox.mark_sent(&sent, t).await.expect("settling works"));

    let listed = |entries: Vec<OutboxEntry>| -> Vec<Uuid> {
        entries.into_iter().map(|entry| entry.mail.id).collect()
    };
    assert_eq!(
        listed(list(outbox, None, 10).await),
        [mails[3].id, mails[2].id, mails[1].id, mails[0].id]
    );
    assert_eq!(
        listed(list(outbox, None, 2).await),
        [mails[3].id, mails[2].id]
    );
    assert_eq!(
        listed(list(outbox, Some(MailStatus::Pending), 10).await),
        [mails[3].id, mails[2].id, mails[1].id]
    );
    assert_eq!(
        listed(list(outbox, Some(MailStatus::Sent), 10).await),
        [mails[0].id]
    );
    assert!(list(outbox, Some(MailStatus::Failed), 10).await.is_empty());
    assert!(list(outbox, None, 0).await.is_empty());
    assert_eq!(outbox.pending().await.expect("count works"), 3);
}

/// The purge deletes mail sent or failed before the cut-off, at most a batch per call,
/// and never pending mail, however old.
pub async fn a_purge_deletes_settled_mail_before_the_cutoff_and_keeps_pending_mail(
    stores: impl Stores,
) {
    let t = now();
    let old = t - Duration::days(10);
    let sent_long_ago = mail("ada@example.com", old);
    let failed_long_ago = mail("grace@example.com", old + Duration::seconds(1));
    let pending_long_ago = mail("alan@example.com", old + Duration::seconds(2));
    let sent_lately = mail("edsger@example.com", old + Duration::seconds(3));
    enqueue(
        &stores,
        &[
            &sent_long_ago,
            &failed_long_ago,
            &pending_long_ago,
            &sent_lately,
        ],
    )
    .await;
    let outbox = stores.outbox();
    for leased in lease(outbox, old + Duration::seconds(3), 10).await {
        let settled = if leased.mail.id == sent_long_ago.id {
            outbox.mark_sent(&leased, old).await
        } else if leased.mail.id == failed_long_ago.id {
            outbox.mark_attempt_failed(&leased, "550", None).await
        } else if leased.mail.id == sent_lately.id {
            outbox.mark_sent(&leased, t).await
        } else {
            continue;
        };
        assert!(settled.expect("settling works"));
    }

    let cutoff = t - Duration::days(7);
    let purge = || async {
        outbox
            .purge_settled_before(cutoff, 1)
            .await
            .expect("purge works")
    };
    assert_eq!(purge().await, 1);
    assert_eq!(purge().await, 1);
    assert_eq!(purge().await, 0);
    let mut left: Vec<Uuid> = list(outbox, None, 10)
        .await
        .into_iter()
        .map(|entry| entry.mail.id)
        .collect();
    left.sort();
    let mut kept = vec![pending_long_ago.id, sent_lately.id];
    kept.sort();
    assert_eq!(left, kept);
}

/// Workers on two instances (two stores on one database) leasing at once never lease one
/// mail twice, and between them lease every mail.
pub async fn concurrent_leases_from_two_instances_never_share_a_mail<S: Stores>(
    (one, two): (S, S),
) {
    const MAILS: usize = 30;
    let t = now();
    let mails: Vec<Mail> = (0..MAILS)
        .map(|i| mail("ada@example.com", t - Duration::milliseconds(i as i64)))
        .collect();
    enqueue(&one, &mails.iter().collect::<Vec<_>>()).await;

    let workers = (0..8).map(|worker| {
        let outbox = if worker % 2 == 0 {
            one.outbox().clone()
        } else {
            two.outbox().clone()
        };
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = outbox
                    .lease_due(now(), Duration::hours(1), 3)
                    .await
                    .expect("leasing works");
                if leased.is_empty() {
                    return mine;
                }
                mine.extend(leased.into_iter().map(|leased| leased.mail.id));
            }
        })
    });
    let mut leased = Vec::new();
    for worker in futures::future::join_all(workers).await {
        leased.extend(worker.expect("no worker panicked"));
    }
    let distinct: HashSet<Uuid> = leased.iter().copied().collect();
    assert_eq!(distinct.len(), leased.len(), "a mail was leased twice");
    assert_eq!(distinct, mails.iter().map(|mail| mail.id).collect());
}
