//! The NATS bridge on production-like servers (issue 18): TLS with a
//! private CA and client certificates, accounts with users, passwords,
//! NKeys, tokens and permissions, a caller's own client; streams made for
//! the exported subjects, with limits; `drain`; per-link stats; kept
//! undecodable messages.
//!
//! Each test starts its own nats-server on 127.0.0.1 with random ports
//! (tests/support/nats_server.rs), from a config file where it needs one,
//! and stops it by PID; without nats-server the tests fail.

#[path = "support/certs.rs"]
mod certs;
mod common;
#[path = "support/nats_server.rs"]
mod nats_server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::eventually;
use nats_server::{engine, NatsServer};
use pinbus::nats::{
    Bridge, BridgeError, BridgeOptions, DiscardPolicy, ExportOptions, ImportOptions, LinkKind,
    Storage,
};
use pinbus::RetryPolicy;

const WAIT: Duration = Duration::from_secs(30);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A plain async-nats client on `url` with `opts`, and its JetStream context.
fn js_with(
    rt: &tokio::runtime::Runtime,
    url: &str,
    opts: async_nats::ConnectOptions,
) -> async_nats::jetstream::Context {
    let client = rt
        .block_on(opts.connect(url))
        .expect("test client connects");
    let _in_runtime = rt.enter();
    async_nats::jetstream::new(client)
}

fn stream_info(
    rt: &tokio::runtime::Runtime,
    js: &async_nats::jetstream::Context,
    name: &str,
) -> async_nats::jetstream::stream::Info {
    rt.block_on(async {
        let mut s = js.get_stream(name).await.expect("stream exists");
        s.info().await.expect("stream info").clone()
    })
}

/// Publishes `n` events on `topic` through an export to `subject` and
/// drains; returns the bridge's stats.
fn export_n(
    bridge: &Bridge,
    engine: &pinbus::Engine,
    subject: &str,
    n: u64,
) -> pinbus::nats::BridgeStats {
    let topic = engine.topic::<u64>(subject).unwrap();
    bridge.export(&topic, subject).unwrap();
    for i in 0..n {
        topic.publish(i).unwrap();
    }
    bridge.drain(engine, WAIT).unwrap()
}

// ---------------------------------------------------------------- TLS

fn tls_server(verify_clients: bool) -> (NatsServer, certs::Certs) {
    let mut made = None;
    let server = NatsServer::start_with_config(|dir| {
        let c = certs::generate(dir);
        let conf = format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: {verify_clients}\n  timeout: 5\n}}\n",
            c.server_cert, c.server_key, c.ca
        );
        made = Some(c);
        conf
    });
    (server, made.unwrap())
}

#[test]
fn tls_with_a_private_ca_and_client_certificates_round_trips() {
    let (server, c) = tls_server(true);
    let url = format!("tls://127.0.0.1:{}", server.port());
    let secured = || {
        BridgeOptions::default()
            .add_root_certificates(&c.ca)
            .add_client_certificate(&c.client_cert, &c.client_key)
            .require_tls(true)
    };
    let a = engine();
    let bridge_a = Bridge::connect(&url, &a, secured()).expect("TLS with CA and client cert");
    let b = engine();
    let bridge_b = Bridge::connect(&url, &b, secured()).unwrap();
    let incoming = b.topic::<u64>("orders.in").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    incoming
        .subscribe(move |ev| {
            s.fetch_add(**ev, Ordering::SeqCst);
        })
        .unwrap();
    bridge_b
        .import::<u64, _>("orders.>", &incoming, ImportOptions::durable("tls-reader"))
        .unwrap();
    let stats = export_n(&bridge_a, &a, "orders.created", 100);
    assert_eq!((stats.exported, stats.export_pending), (100, 0));
    assert!(
        eventually(WAIT, || seen.load(Ordering::SeqCst)
            == (0..100).sum::<u64>()),
        "every event crossed TLS once: {:?}",
        bridge_b.stats()
    );
}

#[test]
fn untrusted_or_missing_certificates_are_typed_errors_that_say_what_to_add() {
    let (server, c) = tls_server(true);
    let url = format!("tls://127.0.0.1:{}", server.port());
    let e = engine();
    let quick = || BridgeOptions::default().connect_timeout(Duration::from_secs(5));

    // The server's CA is not trusted (only the system's roots).
    let err = Bridge::connect(&url, &e, quick()).unwrap_err();
    assert!(matches!(err, BridgeError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("add_root_certificates"), "{err}");

    // Another CA: still untrusted.
    let err = Bridge::connect(&url, &e, quick().add_root_certificates(&c.other_ca)).unwrap_err();
    assert!(matches!(err, BridgeError::Tls { .. }), "{err:?}");

    // Trusted, but the server verifies clients and none is presented.
    let err = Bridge::connect(&url, &e, quick().add_root_certificates(&c.ca)).unwrap_err();
    assert!(
        matches!(err, BridgeError::Tls { .. } | BridgeError::Connect { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("add_client_certificate"), "{err}");

    // A path that is not a file: refused before connecting.
    let err =
        Bridge::connect(&url, &e, quick().add_root_certificates("/no/such/ca.pem")).unwrap_err();
    assert!(matches!(err, BridgeError::InvalidOption { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/ca.pem"), "{err}");
}

// ------------------------------------------------- accounts and users

/// Publish rights of the bridge's users: the exported subjects, the
/// JetStream API, acks, and replies.
fn perms(publish: &str) -> String {
    format!(
        "permissions: {{ publish: {{ allow: [{publish}, \"$JS.API.>\", \"$JS.ACK.>\", \"_INBOX.>\"] }}, \
         subscribe: {{ allow: [\"_INBOX.>\"] }} }}"
    )
}

/// A server with account APP (JetStream on) holding a password user
/// `alice` and an NKey user, both allowed to publish to `orders.>` only.
fn accounts_server() -> (NatsServer, nkeys::KeyPair) {
    let nkey = nkeys::KeyPair::new_user();
    let pubkey = nkey.public_key();
    let server = NatsServer::start_with_config(|_| {
        format!(
            "accounts {{\n  APP {{\n    jetstream: enabled\n    users: [\n      \
             {{ user: alice, password: \"alice-pass\", {p} }}\n      \
             {{ nkey: {pubkey}, {p} }}\n    ]\n  }}\n}}\n",
            p = perms("\"orders.>\"")
        )
    });
    (server, nkey)
}

#[test]
fn users_passwords_and_nkeys_of_an_account_connect_and_wrong_ones_are_auth_errors() {
    let (server, nkey) = accounts_server();
    let url = server.url();
    let e = engine();

    let alice = Bridge::connect(
        &url,
        &e,
        BridgeOptions::default().user_and_password("alice", "alice-pass"),
    )
    .expect("alice with her password");
    assert_eq!(export_n(&alice, &e, "orders.created", 10).exported, 10);
    alice.close();

    let err = Bridge::connect(
        &url,
        &e,
        BridgeOptions::default().user_and_password("alice", "wrong"),
    )
    .unwrap_err();
    assert!(matches!(err, BridgeError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("user_and_password"), "{err}");

    let err = Bridge::connect(&url, &e, BridgeOptions::default()).unwrap_err();
    assert!(
        matches!(err, BridgeError::Auth { .. }),
        "no credentials: {err:?}"
    );

    let e2 = engine();
    let by_nkey = Bridge::connect(
        &url,
        &e2,
        BridgeOptions::default().nkey(nkey.seed().unwrap()),
    )
    .expect("the NKey user");
    assert_eq!(export_n(&by_nkey, &e2, "orders.nkey", 5).exported, 5);

    let stranger = nkeys::KeyPair::new_user();
    let err = Bridge::connect(
        &url,
        &e,
        BridgeOptions::default().nkey(stranger.seed().unwrap()),
    )
    .unwrap_err();
    assert!(matches!(err, BridgeError::Auth { .. }), "{err:?}");

    // Two ways at once, and a credentials file that is not one.
    let err = Bridge::connect(
        &url,
        &e,
        BridgeOptions::default()
            .token("t")
            .user_and_password("a", "b"),
    )
    .unwrap_err();
    assert!(matches!(err, BridgeError::InvalidOption { .. }), "{err:?}");
    let bogus = server.store().join("bogus.creds");
    std::fs::write(&bogus, "not a credentials file").unwrap();
    let err =
        Bridge::connect(&url, &e, BridgeOptions::default().credentials_file(&bogus)).unwrap_err();
    assert!(matches!(err, BridgeError::Credentials { .. }), "{err:?}");
}

#[test]
fn a_subject_the_user_may_not_publish_to_is_a_permission_error_not_a_silent_loss() {
    let (server, _) = accounts_server();
    let e = engine();
    let alice = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default().user_and_password("alice", "alice-pass"),
    )
    .unwrap();
    let payments = e.topic::<u64>("payments.created").unwrap();
    let err = alice.export(&payments, "payments.created").unwrap_err();
    match &err {
        BridgeError::Permission {
            operation, subject, ..
        } => assert_eq!(
            (*operation, subject.as_str()),
            ("publish to", "payments.created")
        ),
        other => panic!("expected a permission error, got {other:?}"),
    }
    assert!(err.to_string().contains("allow"), "{err}");
    // Nothing was subscribed: publishing stays local, nothing counted as sent.
    payments.publish(1).unwrap();
    assert!(alice.link_stats().is_empty());
    // A permitted subject still works on the same connection.
    assert_eq!(export_n(&alice, &e, "orders.created", 3).exported, 3);
}

#[test]
fn serving_a_subject_the_user_may_not_subscribe_to_is_a_permission_error() {
    let (server, _) = accounts_server();
    let e = engine();
    let alice = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default().user_and_password("alice", "alice-pass"),
    )
    .unwrap();
    let quotes = e.service::<u64, u64>("orders.quote").unwrap();
    quotes.serve(|q| **q).unwrap();
    match alice.serve(&quotes, "orders.quote").unwrap_err() {
        BridgeError::Permission {
            operation, subject, ..
        } => assert_eq!(
            (operation, subject.as_str()),
            ("subscribe to", "orders.quote")
        ),
        other => panic!("expected a permission error, got {other:?}"),
    }
}

#[test]
fn tokens_authenticate_and_a_wrong_token_is_an_auth_error() {
    let server =
        NatsServer::start_with_config(|_| "authorization { token: \"s3cret-token\" }".into());
    let e = engine();
    let bridge = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default().token("s3cret-token"),
    )
    .expect("the right token");
    assert_eq!(export_n(&bridge, &e, "orders.created", 4).exported, 4);
    let err =
        Bridge::connect(&server.url(), &e, BridgeOptions::default().token("nope")).unwrap_err();
    assert!(matches!(err, BridgeError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("token"), "{err}");
}

#[test]
fn with_client_runs_exports_and_imports_on_the_callers_client() {
    let (server, _) = accounts_server();
    let rt = rt();
    let client = rt
        .block_on(
            async_nats::ConnectOptions::with_user_and_password("alice".into(), "alice-pass".into())
                .connect(server.url()),
        )
        .unwrap();
    let e = engine();
    let bridge = Bridge::with_client(client.clone(), &e, BridgeOptions::default()).unwrap();
    let incoming = e.topic::<u64>("orders.back").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    incoming
        .subscribe(move |ev| s.lock().unwrap().push(**ev))
        .unwrap();
    let import = bridge
        .import::<u64, _>(
            "orders.created",
            &incoming,
            ImportOptions::durable("own-client"),
        )
        .unwrap();
    assert_eq!(import.stream(), "PINBUS");
    assert_eq!(export_n(&bridge, &e, "orders.created", 20).exported, 20);
    assert!(eventually(WAIT, || seen.lock().unwrap().len() == 20));
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<_>>());
    bridge.close();
    // The caller's client is still theirs, and still connected.
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );
    let err = {
        let payments = e.topic::<u64>("payments.x").unwrap();
        let b = Bridge::with_client(
            client,
            &e,
            BridgeOptions::default().request_timeout(Duration::from_millis(500)),
        )
        .unwrap();
        b.export(&payments, "payments.x").unwrap_err()
    };
    // Without the bridge's event callback the violation is seen as no answer.
    assert!(
        matches!(
            err,
            BridgeError::JetStream { .. } | BridgeError::Permission { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("permission"), "{err}");
}

// ------------------------------------------------------------ streams

#[test]
fn exports_and_imports_without_a_stream_option_get_one_and_mismatches_stay_errors() {
    let server = NatsServer::start().unwrap();
    let rt = rt();
    let js = js_with(&rt, &server.url(), async_nats::ConnectOptions::new());

    // The common case: no .stream(..).
    let a = engine();
    let bridge_a = Bridge::connect(&server.url(), &a, BridgeOptions::default()).unwrap();
    assert_eq!(export_n(&bridge_a, &a, "orders.created", 5).exported, 5);
    let info = stream_info(&rt, &js, "PINBUS");
    assert!(
        info.config.subjects.contains(&"orders.created".to_owned()),
        "{:?}",
        info.config.subjects
    );
    assert_eq!(info.state.messages, 5);

    // An import of a wider filter widens the stream; what is stored stays.
    let b = engine();
    let bridge_b = Bridge::connect(&server.url(), &b, BridgeOptions::default()).unwrap();
    let all = b.topic::<u64>("orders.all").unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    all.subscribe(move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let import = bridge_b
        .import::<u64, _>("orders.>", &all, ImportOptions::durable("wide"))
        .unwrap();
    assert_eq!(import.stream(), "PINBUS");
    assert!(eventually(WAIT, || n.load(Ordering::SeqCst) == 5));
    let subjects = stream_info(&rt, &js, "PINBUS").config.subjects;
    assert!(subjects.contains(&"orders.>".to_owned()), "{subjects:?}");
    assert!(
        !subjects.contains(&"orders.created".to_owned()),
        "covered, so dropped: {subjects:?}"
    );

    // A stream the operators made: used where it is, by either kind of bridge.
    rt.block_on(js.create_stream(async_nats::jetstream::stream::Config {
        name: "AUDIT".into(),
        subjects: vec!["audit.>".into()],
        ..Default::default()
    }))
    .unwrap();
    let c = engine();
    let fixed = Bridge::connect(
        &server.url(),
        &c,
        BridgeOptions::default().stream("SHIPPING", ["shipping.>"]),
    )
    .unwrap();
    assert_eq!(export_n(&fixed, &c, "audit.login", 2).exported, 2);
    assert_eq!(stream_info(&rt, &js, "AUDIT").state.messages, 2);
    let audit_in = c.topic::<u64>("audit.in").unwrap();
    let audit_import = fixed
        .import::<u64, _>("audit.>", &audit_in, ImportOptions::durable("auditor"))
        .unwrap();
    assert_eq!(audit_import.stream(), "AUDIT");

    // Genuine mismatches: an explicit stream, and no stream on the server.
    let billing = c.topic::<u64>("billing.x").unwrap();
    let err = fixed.export(&billing, "billing.x").unwrap_err();
    assert!(matches!(err, BridgeError::NotInStream { .. }), "{err:?}");
    let err = fixed
        .import::<u64, _>("billing.>", &billing, ImportOptions::durable("b"))
        .unwrap_err();
    assert!(matches!(err, BridgeError::NotInStream { .. }), "{err:?}");
    assert!(err.to_string().contains("BridgeOptions::stream"), "{err}");
}

#[test]
fn stream_limits_come_from_bridge_options_and_are_applied() {
    let server = NatsServer::start().unwrap();
    let rt = rt();
    let js = js_with(&rt, &server.url(), async_nats::ConnectOptions::new());
    let limited = || {
        BridgeOptions::default()
            .stream("LIM", ["lim.>"])
            .storage(Storage::Memory)
            .max_age(Duration::from_secs(3600))
            .max_bytes(1 << 20)
            .max_messages(5)
            .discard(DiscardPolicy::Old)
    };
    let e = engine();
    let bridge = Bridge::connect(&server.url(), &e, limited()).unwrap();
    let config = stream_info(&rt, &js, "LIM").config;
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::Memory
    );
    assert_eq!(config.max_age, Duration::from_secs(3600));
    assert_eq!((config.max_bytes, config.max_messages), (1 << 20, 5));
    assert_eq!(
        config.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );

    assert_eq!(export_n(&bridge, &e, "lim.x", 10).exported, 10);
    let state = stream_info(&rt, &js, "LIM").state;
    assert_eq!(
        (state.messages, state.first_sequence),
        (5, 6),
        "the oldest five dropped"
    );
    bridge.close();

    // Connecting again with other limits changes them; unset ones stay.
    let again = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default()
            .stream("LIM", ["lim.>"])
            .max_messages(3),
    )
    .unwrap();
    let config = stream_info(&rt, &js, "LIM").config;
    assert_eq!((config.max_messages, config.max_bytes), (3, 1 << 20));
    again.close();

    let err = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default()
            .stream("LIM", ["lim.>"])
            .storage(Storage::File),
    )
    .unwrap_err();
    assert!(matches!(err, BridgeError::InvalidOption { .. }), "{err:?}");
    assert!(err.to_string().contains("storage"), "{err}");
}

// -------------------------------------------------------------- drain

#[test]
fn drain_waits_until_every_accepted_event_is_stored_or_dead_lettered() {
    let server = NatsServer::start().unwrap();
    let rt = rt();
    let js = js_with(&rt, &server.url(), async_nats::ConnectOptions::new());
    const N: u64 = 20_000;
    let e = engine();
    let bridge = Bridge::connect(&server.url(), &e, BridgeOptions::default()).unwrap();
    let orders = e.topic::<u64>("orders.created").unwrap();
    // A tiny queue that refuses at once: many events go through the retry
    // policy, which drain must wait for too.
    let export = bridge
        .export_with(
            &orders,
            "orders.created",
            ExportOptions::new()
                .queue_capacity(8)
                .max_block(Duration::ZERO)
                .retry(RetryPolicy::fixed(Duration::from_millis(2)).max_attempts(100_000)),
        )
        .unwrap();
    for i in 0..N {
        orders.publish(i).unwrap();
    }
    let stats = bridge.drain(&e, Duration::from_secs(120)).unwrap();
    assert_eq!(stats.exported + stats.export_dead_lettered, N, "{stats:?}");
    assert_eq!((stats.export_pending, stats.export_failed), (0, 0));
    assert_eq!(export.stats().exported, stats.exported);
    assert_eq!(
        stream_info(&rt, &js, "PINBUS").state.messages,
        stats.exported
    );

    // Another engine is refused.
    let other = engine();
    let err = bridge.drain(&other, WAIT).unwrap_err();
    assert!(matches!(err, BridgeError::InvalidOption { .. }), "{err:?}");
}

#[test]
fn drain_times_out_with_what_is_still_on_its_way_when_nats_is_gone() {
    let mut server = NatsServer::start().unwrap();
    let e = engine();
    let bridge = Bridge::connect(
        &server.url(),
        &e,
        BridgeOptions::default().close_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let orders = e.topic::<u64>("orders.created").unwrap();
    bridge.export(&orders, "orders.created").unwrap();
    server.stop();
    for i in 0..10 {
        orders.publish(i).unwrap();
    }
    match bridge.drain(&e, Duration::from_millis(500)) {
        Err(BridgeError::DrainTimeout {
            unseen,
            pending,
            retrying,
        }) => {
            // An event handled between the two reads may count twice, never
            // zero times.
            assert!(
                unseen + pending + retrying >= 10,
                "every event accounted for"
            );
            assert!(pending + retrying <= 10);
        }
        other => panic!("expected a drain timeout, got {other:?}"),
    }
}

// ------------------------------------------- per-link stats, rejected

#[test]
fn stats_per_export_and_import_and_undecodable_messages_are_kept() {
    let server = NatsServer::start().unwrap();
    let rt = rt();
    let js = js_with(&rt, &server.url(), async_nats::ConnectOptions::new());
    let a = engine();
    let bridge = Bridge::connect(&server.url(), &a, BridgeOptions::default()).unwrap();
    let ta = a.topic::<u64>("orders.a").unwrap();
    let tb = a.topic::<u64>("orders.b").unwrap();
    let ea = bridge.export(&ta, "orders.a").unwrap();
    let eb = bridge.export(&tb, "orders.b").unwrap();
    let incoming = a.topic::<u64>("orders.incoming").unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    incoming
        .subscribe(move |_| {
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let import = bridge
        .import::<u64, _>("orders.*", &incoming, ImportOptions::durable("all"))
        .unwrap();
    let small = bridge
        .import::<u64, _>(
            "orders.*",
            &incoming,
            ImportOptions::durable("small")
                .keep_rejected(1)
                .rejected_payload_limit(4),
        )
        .unwrap();
    for i in 0..3 {
        ta.publish(i).unwrap();
    }
    for i in 0..5 {
        tb.publish(i).unwrap();
    }
    bridge.drain(&a, WAIT).unwrap();
    // Two bad messages from a foreign publisher.
    rt.block_on(async {
        for (i, body) in ["{not json", "\"a string, not a number\""]
            .iter()
            .enumerate()
        {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("foreign-bad-{i}").as_str());
            h.insert("X-Source", "legacy-billing");
            js.publish_with_headers("orders.a", h, body.as_bytes().to_vec().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    assert!(eventually(WAIT, || import.stats().import_terminated == 2
        && small.stats().import_terminated == 2));
    assert!(eventually(WAIT, || import.stats().imported == 8
        && small.stats().imported == 8));
    assert_eq!(handled.load(Ordering::SeqCst), 16);

    assert_eq!((ea.stats().exported, eb.stats().exported), (3, 5));
    assert_eq!(ea.stats().imported, 0);
    let links = bridge.link_stats();
    assert_eq!(links.len(), 4);
    let find = |kind: LinkKind, key: &str| {
        links
            .iter()
            .find(|l| l.kind == kind && (l.subject == key || l.durable.as_deref() == Some(key)))
            .unwrap_or_else(|| panic!("no {kind:?} {key} in {links:?}"))
    };
    assert_eq!(find(LinkKind::Export, "orders.a").stats.exported, 3);
    assert_eq!(find(LinkKind::Export, "orders.b").stats.exported, 5);
    let all = find(LinkKind::Import, "all");
    assert_eq!((all.stats.imported, all.stats.import_terminated), (8, 2));
    assert!(all.running);
    let total = bridge.stats();
    assert_eq!(
        (total.exported, total.imported, total.import_terminated),
        (8, 16, 4)
    );

    // The kept messages: subject, headers, body, reason.
    let kept = import.rejected();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].subject, "orders.a");
    assert_eq!(kept[0].payload, b"{not json");
    assert_eq!(kept[0].header("x-source"), Some("legacy-billing"));
    assert_eq!(kept[0].header("Nats-Msg-Id"), Some("foreign-bad-0"));
    assert!(kept[0].reason.contains("JSON"), "{}", kept[0].reason);
    assert_eq!(
        (kept[0].durable.as_str(), kept[0].topic.as_str()),
        ("all", "orders.incoming")
    );
    assert_eq!(kept[0].stream, "PINBUS");
    assert!(kept[1].stream_sequence > kept[0].stream_sequence);
    // Bounded: one kept, its body cut to 4 bytes; the other counted.
    let small_kept = small.rejected();
    assert_eq!(small_kept.len(), 1);
    assert_eq!(small_kept[0].payload, b"\"a s");
    assert_eq!(small_kept[0].payload_len, 24);
    assert_eq!(small.stats().import_rejected_dropped, 1);
    // Taking empties the stores.
    assert_eq!(bridge.take_rejected().len(), 3);
    assert!(import.rejected().is_empty() && bridge.take_rejected().is_empty());

    #[cfg(feature = "metrics")]
    {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || bridge.export_metrics());
        let values = snapshotter.snapshot().into_vec();
        let get = |name: &str, label: (&str, &str)| {
            values
                .iter()
                .find(|(k, ..)| {
                    k.key().name() == name
                        && k.key()
                            .labels()
                            .any(|l| l.key() == label.0 && l.value() == label.1)
                })
                .map(|(_, _, _, v)| v)
                .unwrap_or_else(|| panic!("no {name} {label:?}"))
        };
        assert!(matches!(
            get("pinbus_nats_export_exported_total", ("subject", "orders.b")),
            DebugValue::Counter(5)
        ));
        assert!(matches!(
            get("pinbus_nats_import_terminated_total", ("durable", "all")),
            DebugValue::Counter(2)
        ));
    }
}
