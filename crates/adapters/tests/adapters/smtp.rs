//! The SMTP mailer against a local SMTP sink (a minimal SMTP server in this test).

use std::sync::{Arc, Mutex};

use billing_adapters::outbox::smtp::SmtpMailer;
use billing_adapters::{deliver_pending, Mailer, OutboxMessage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::*;

/// Accepts SMTP sessions and keeps every message's DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut data));
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opening_reminder_goes_out_over_smtp_once() {
    let (port, received) = smtp_sink().await;
    let h = Harness::sqlite().await;
    h.register("acme-finance").await;
    upgrade(&h, "acme", "cn1").await;
    h.billing.projector.flush().await.unwrap();
    let ec = h.billing.expense_center.clone();
    // The address book resolves through the embedded directory (looked up ahead of time here).
    let finance = billing_domain::UserName::parse("acme-finance").unwrap();
    let email = ec.email_of(&finance).await.unwrap().unwrap();
    let mailer = SmtpMailer::unencrypted(
        "127.0.0.1",
        port,
        "billing@workspace-billing.example",
        Box::new(move |user| (*user == finance).then(|| email.clone())),
    );
    let first = deliver_pending(
        h.billing.db(),
        &mailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:00:00Z")),
    )
    .await
    .unwrap();
    let second = deliver_pending(
        h.billing.db(),
        &mailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:01:00Z")),
    )
    .await
    .unwrap();
    assert_eq!((first.sent, second.sent), (1, 0));
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let text = &messages[0];
    assert!(text.contains("To: finance@example.com"), "{text}");
    assert!(
        text.contains("Message-ID: <opening-reminder.acme.4@workspace-billing>"),
        "{text}"
    );
    assert!(text.contains("Commercial Plan"), "{text}");
}

#[tokio::test]
async fn an_unknown_recipient_is_a_delivery_error() {
    let mailer = SmtpMailer::unencrypted("127.0.0.1", 1, "billing@example.com", Box::new(|_| None));
    let message = OutboxMessage {
        workspace_id: ws("w"),
        kind: "opening-reminder".into(),
        sequence: 4,
        countdown: None,
        user_name: billing_domain::UserName::parse("ghost").unwrap(),
        subject: "s".into(),
        body: "b".into(),
        created_at: t("2026-11-27T10:00:00Z"),
        due_at: t("2026-11-27T10:00:00Z"),
        sent_at: None,
        attempts: 0,
    };
    let err = mailer.deliver(&message).await.unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
}
