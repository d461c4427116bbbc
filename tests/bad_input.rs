//! Guarantee 8: bad input gives a typed error whose message says what to
//! change; no panics on the public API. Every error variant is produced here
//! (except `ConfigError::PinFailed`: `tests/pin_failure.rs`).

mod common;

use std::time::Duration;

use common::{engine, within};
use pinbus::{
    Backpressure, ConfigError, Engine, IdleStrategy, Pinning, PublishError, SubscribeError,
    SubscribeOptions, TopicError, TopicOptions, WaitError,
};

fn build_err(b: pinbus::EngineBuilder) -> ConfigError {
    match b.build() {
        Ok(_) => panic!("expected a ConfigError"),
        Err(e) => e,
    }
}

fn msg(e: &impl std::fmt::Display) -> String {
    e.to_string()
}

#[test]
fn config_errors_name_the_setting_and_the_fix() {
    let tick = build_err(Engine::builder().timer_tick(Duration::from_nanos(10)));
    assert!(matches!(tick, ConfigError::TimerTick { .. }), "{tick:?}");
    assert!(msg(&tick).contains("timer_tick") && msg(&tick).contains("at least 1µs"));

    let e = build_err(Engine::builder().workers(0));
    assert!(matches!(e, ConfigError::ZeroWorkers));
    assert!(msg(&e).contains("workers(1)"), "{e}");

    let e = build_err(Engine::builder().workers(pinbus::MAX_WORKERS + 1));
    assert!(matches!(e, ConfigError::TooManyWorkers { .. }));
    assert!(msg(&e).contains("at most 1024"), "{e}");

    let e = build_err(Engine::builder().lane_capacity(1000));
    assert!(matches!(
        e,
        ConfigError::CapacityNotPowerOfTwo {
            capacity: 1000,
            suggestion: 1024
        }
    ));
    assert!(msg(&e).contains("not a power of two; try 1024"), "{e}");

    for bad in [0, pinbus::MAX_LANE_CAPACITY * 2] {
        let e = build_err(Engine::builder().lane_capacity(bad));
        assert!(
            matches!(e, ConfigError::CapacityOutOfRange { .. }),
            "{bad}: {e}"
        );
        assert!(msg(&e).contains("use a power of two from 1 to"), "{e}");
    }

    let e = build_err(Engine::builder().drain_batch(0));
    assert!(matches!(e, ConfigError::DrainBatch { batch: 0, .. }));
    assert!(msg(&e).contains("use 1 to"), "{e}");

    let e = build_err(Engine::builder().producer_slots(0));
    assert!(matches!(e, ConfigError::ProducerSlots { slots: 0, .. }));
    assert!(msg(&e).contains("use 1 to"), "{e}");

    let e = build_err(
        Engine::builder()
            .workers(1)
            .pinning(Pinning::Cores(vec![100_000])),
    );
    match &e {
        ConfigError::UnknownCore { core, available } => {
            assert_eq!(*core, 100_000);
            assert!(!available.is_empty());
        }
        other => panic!("expected UnknownCore, got {other:?}"),
    }
    assert!(msg(&e).contains("pick cores from that list"), "{e}");

    let e = build_err(
        Engine::builder()
            .workers(2)
            .pinning(Pinning::Cores(vec![0, 0])),
    );
    assert!(matches!(e, ConfigError::DuplicateCore { core: 0 }));
    assert!(msg(&e).contains("give each worker its own core"), "{e}");

    let e = build_err(
        Engine::builder()
            .workers(2)
            .pinning(Pinning::Cores(vec![0])),
    );
    assert!(matches!(
        e,
        ConfigError::CoreCountMismatch {
            cores: 1,
            workers: 2
        }
    ));
    assert!(msg(&e).contains("exactly one core per worker"), "{e}");

    // A stack no OS can give: the thread spawn fails, and no worker leaks.
    let e = build_err(Engine::builder().workers(2).worker_stack_size(1 << 60));
    assert!(matches!(e, ConfigError::Spawn { worker: 0, .. }), "{e:?}");
    assert!(msg(&e).contains("could not start worker thread 0"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn topic_errors() {
    let engine = engine(2, IdleStrategy::Park, 8);
    // Held: a topic whose last handle is gone is freed (guarantee 13), and
    // the name could then be reopened with another type.
    let _orders = engine.topic::<u64>("orders").unwrap();

    let e = engine.topic::<String>("orders").unwrap_err();
    assert!(matches!(e, TopicError::TypeMismatch { .. }));
    assert!(
        msg(&e).contains("already exists with event type u64, not alloc::string::String"),
        "{e}"
    );

    for (name, hint) in [
        ("", "empty"),
        ("has space", "whitespace"),
        ("orders.*", "wildcards"),
        ("orders.>", "wildcards"),
        (".orders", "empty dot-separated part"),
        ("orders..created", "empty dot-separated part"),
        ("orders.", "empty dot-separated part"),
    ] {
        let e = engine.topic::<u64>(name).unwrap_err();
        assert!(matches!(e, TopicError::InvalidName { .. }), "{name:?}");
        assert!(msg(&e).contains(hint), "{name:?}: {e}");
    }
    let long = "x".repeat(256);
    assert!(msg(&engine.topic::<u64>(&long).unwrap_err()).contains("longer than 255"));

    let e = engine
        .topic_with::<u64>(
            "orders",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap_err();
    assert!(matches!(e, TopicError::OptionsMismatch { .. }));
    assert!(msg(&e).contains("open it with topic()"), "{e}");

    let e = engine
        .topic_with::<u64>("pinned", TopicOptions::default().worker(2))
        .unwrap_err();
    assert!(matches!(
        e,
        TopicError::NoSuchWorker {
            worker: 2,
            workers: 2
        }
    ));
    assert!(msg(&e).contains("numbered 0 to 1"), "{e}");

    engine.shutdown();
    let e = engine.topic::<u64>("after").unwrap_err();
    assert_eq!(e, TopicError::Closed);
    assert!(msg(&e).contains("shut down"), "{e}");
}

#[test]
fn subscribe_errors() {
    let engine = engine(2, IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("subs").unwrap();
    let e = topic
        .subscribe_with(|_| {}, SubscribeOptions::new().worker(5))
        .unwrap_err();
    assert!(matches!(
        e,
        SubscribeError::NoSuchWorker {
            worker: 5,
            workers: 2
        }
    ));
    assert!(msg(&e).contains("numbered 0 to 1"), "{e}");
    let e = topic
        .group("g")
        .subscribe_with(|_| {}, SubscribeOptions::new().worker(9))
        .unwrap_err();
    assert!(matches!(e, SubscribeError::NoSuchWorker { worker: 9, .. }));
    for bad in ["", "two words"] {
        let e = topic.group(bad).subscribe(|_| {}).unwrap_err();
        assert!(
            matches!(e, SubscribeError::InvalidGroupName { .. }),
            "{bad:?}"
        );
    }
    engine.shutdown();
    let e = topic.subscribe(|_| {}).unwrap_err();
    assert!(matches!(e, SubscribeError::Closed { .. }));
    assert!(
        msg(&e).contains("'subs'") && msg(&e).contains("shut down"),
        "{e}"
    );
    assert!(topic.group("g").subscribe(|_| {}).is_err());
}

#[test]
fn publish_errors_hand_the_event_back() {
    let engine = engine(1, IdleStrategy::Park, 1);
    let topic = engine
        .topic_with::<String>(
            "pub",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut first = true;
    topic
        .subscribe(move |_| {
            if first {
                first = false;
                let _ = rx.recv();
            }
        })
        .unwrap();
    topic.publish("a".into()).unwrap();
    // The worker holds "a" (its slot is freed after the batch) or "b" fills
    // the single slot: within two publishes the lane is full.
    let full = (0..3)
        .map(|i| topic.publish(format!("x{i}")))
        .find_map(Result::err)
        .expect("capacity 1 must fill");
    assert!(full.is_full());
    assert!(msg(&full).contains("lane is full") && msg(&full).contains("Backpressure::Block"));
    assert!(full.into_inner().starts_with('x'));
    drop(tx);

    // From a handler, publish_and_wait refuses instead of deadlocking.
    let t2 = engine.topic::<u64>("inner").unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (o, t3) = (out.clone(), t2.clone());
    t2.subscribe(move |ev| {
        if **ev == 1 {
            *o.lock().unwrap() = Some(t3.publish_and_wait(2));
        }
    })
    .unwrap();
    t2.publish_and_wait(1).unwrap();
    let res = out.lock().unwrap().take().expect("handler ran");
    match res {
        Err(PublishError::WouldDeadlock(v)) => assert_eq!(v, 2),
        other => panic!("expected WouldDeadlock, got {other:?}"),
    }

    engine.shutdown();
    let closed = topic.publish("late".into()).unwrap_err();
    assert!(closed.is_closed());
    assert!(msg(&closed).contains("shut down"));
    assert_eq!(closed.into_inner(), "late");
    let batch = topic
        .publish_batch(vec!["p".to_string(), "q".to_string()])
        .unwrap_err();
    assert_eq!(batch.into_inner(), vec!["p".to_string(), "q".to_string()]);
    assert!(topic.try_publish("t".into()).unwrap_err().is_closed());
    assert!(topic.publish_tracked("r".into()).unwrap_err().is_closed());
}

#[test]
fn waiting_on_a_receipt_inside_a_handler_is_refused() {
    let engine = engine(1, IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("receipts").unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (o, t) = (out.clone(), topic.clone());
    topic
        .subscribe(move |ev| {
            if **ev == 0 {
                let r = t.publish_tracked(1).unwrap();
                *o.lock().unwrap() = Some(r.wait());
            }
        })
        .unwrap();
    within("publish_and_wait", move || {
        topic.publish_and_wait(0).unwrap()
    });
    let res = out.lock().unwrap().take().expect("handler ran");
    assert_eq!(res, Err(WaitError::OnWorkerThread));
    assert!(msg(&WaitError::OnWorkerThread).contains("is_complete()"));
    engine.shutdown();
}

#[test]
fn timer_tick_has_an_upper_bound() {
    // Duration::MAX used to be accepted, and delayed events then fired only
    // at shutdown.
    for tick in [
        Duration::MAX,
        Duration::from_secs(3600),
        Duration::from_secs(1) + Duration::from_nanos(1),
    ] {
        let e = build_err(Engine::builder().timer_tick(tick));
        assert!(
            matches!(e, ConfigError::TimerTick { tick: t, min, max }
                if t == tick && min == Duration::from_micros(1) && max == Duration::from_secs(1)),
            "{tick:?}: {e:?}"
        );
        let m = msg(&e);
        assert!(m.starts_with("timer_tick is "), "{m}");
        assert!(m.contains("use at most 1s"), "{m}");
        assert!(m.contains("from 1µs to 1s"), "{m}");
        assert!(m.contains("timer_tick_us = 1 to 1000000"), "{m}");
    }
    // Both bounds are accepted.
    for tick in [Duration::from_micros(1), Duration::from_secs(1)] {
        let engine = Engine::builder().timer_tick(tick).build().unwrap();
        engine.shutdown();
    }
}

/// A name of `len` bytes that is not a valid topic or group name only
/// because of its length.
fn long_name(len: usize) -> String {
    "a".repeat(len)
}

/// The message quotes at most 64 bytes of the name, then `…` and its length.
fn assert_shortened(m: &str, len: usize) {
    assert!(m.contains(&format!("{}…", "a".repeat(64))), "{m}");
    assert!(!m.contains(&"a".repeat(65)), "{m}");
    assert!(m.contains(&format!("({len} bytes)")), "{m}");
    assert!(m.len() < 400, "{} bytes: {m}", m.len());
}

#[test]
fn long_names_are_shortened_in_messages() {
    let engine = engine(1, IdleStrategy::Park, 8);
    let huge = long_name(10_240);

    let e = engine.topic::<u64>(&huge).unwrap_err();
    assert!(matches!(&e, TopicError::InvalidName { name, .. } if *name == huge));
    let m = msg(&e);
    assert_shortened(&m, 10_240);
    assert!(
        m.starts_with(&format!("topic name \"{}…\" (10240 bytes)", "a".repeat(64))),
        "{m}"
    );
    assert!(m.contains("longer than 255 bytes"), "{m}");

    // A valid 200-byte name, in the errors that quote an existing topic.
    let name = long_name(200);
    let topic = engine.topic::<u64>(&name).unwrap();
    let e = engine.topic::<String>(&name).unwrap_err();
    assert!(matches!(&e, TopicError::TypeMismatch { name: n, .. } if *n == name));
    assert_shortened(&msg(&e), 200);
    assert!(msg(&e).contains("open it with the same type"), "{e}");
    let e = engine
        .topic_with::<u64>(
            &name,
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap_err();
    assert!(matches!(&e, TopicError::OptionsMismatch { name: n } if *n == name));
    assert_shortened(&msg(&e), 200);

    let e = topic.group(&huge).subscribe(|_| {}).unwrap_err();
    assert!(matches!(&e, SubscribeError::InvalidGroupName { name, .. } if *name == huge));
    assert_shortened(&msg(&e), 10_240);

    engine.shutdown();
    let e = topic.subscribe(|_| {}).unwrap_err();
    assert!(matches!(&e, SubscribeError::Closed { topic: t } if *t == name));
    assert_shortened(&msg(&e), 200);
    assert!(msg(&e).contains("shut down"), "{e}");

    // Short names are quoted whole, as before.
    let e = Engine::builder()
        .build()
        .unwrap()
        .topic::<u64>("two words")
        .unwrap_err();
    assert_eq!(
        msg(&e),
        "topic name \"two words\" is invalid: it contains whitespace or control characters"
    );
}

#[test]
fn long_names_are_shortened_in_config_errors() {
    let huge = long_name(10_240);
    let mut config = pinbus::Config::default();
    config.topics.insert(huge.clone(), TopicOptions::default());
    let e = config.validate().unwrap_err();
    assert!(matches!(&e, ConfigError::InvalidTopicName { name, .. } if *name == huge));
    assert_shortened(&msg(&e), 10_240);

    let name = long_name(200);
    let mut config = pinbus::Config::default();
    config
        .topics
        .insert(name.clone(), TopicOptions::default().worker(3));
    let e = config.validate().unwrap_err();
    assert!(matches!(&e, ConfigError::TopicWorker { topic, .. } if *topic == name));
    assert_shortened(&msg(&e), 200);
    assert!(msg(&e).contains("use a smaller worker index"), "{e}");

    // From TOML: a long misspelt key, a long unknown name, a long string of
    // the wrong type, a long topic name in a key path.
    let toml_err = |text: String| pinbus::Config::from_toml_str(&text).unwrap_err();
    let e = toml_err(format!("{huge} = 1\n"));
    assert!(matches!(&e, ConfigError::UnknownKey { key, .. } if *key == huge));
    assert_shortened(&msg(&e), 10_240);
    assert!(msg(&e).contains("fix the spelling"), "{e}");

    // The TOML parser quotes a duplicate key whole; the message cuts it.
    let e = toml_err(format!("{huge} = 1\n{huge} = 2\n"));
    assert!(
        matches!(&e, ConfigError::TomlSyntax { line: 2, .. }),
        "{e:?}"
    );
    assert_shortened(&msg(&e), 10_240);
    assert!(
        msg(&e).contains("duplicate key") && msg(&e).contains("fix the file there"),
        "{e}"
    );

    let e = toml_err(format!("idle = \"{huge}\"\n"));
    assert!(matches!(&e, ConfigError::UnknownIdleStrategy { name, .. } if *name == huge));
    assert_shortened(&msg(&e), 10_240);
    let e = toml_err(format!("pinning = \"{huge}\"\n"));
    assert!(matches!(&e, ConfigError::UnknownPinning { name, .. } if *name == huge));
    assert_shortened(&msg(&e), 10_240);
    let e = toml_err(format!("timer_shutdown = \"{huge}\"\n"));
    assert!(matches!(&e, ConfigError::UnknownTimerShutdown { name, .. } if *name == huge));
    assert_shortened(&msg(&e), 10_240);
    let e = toml_err(format!("workers = \"{huge}\"\n"));
    assert!(matches!(&e, ConfigError::WrongType { key, .. } if key == "workers"));
    assert_shortened(&msg(&e), 10_240);

    let e = toml_err(format!("[topics.{name}]\nbackpressure = \"{huge}\"\n"));
    assert!(
        matches!(&e, ConfigError::UnknownBackpressure { topic, name: n, .. }
            if *topic == name && *n == huge),
        "{e:?}"
    );
    let m = msg(&e);
    assert!(
        m.contains("(200 bytes)") && m.contains("(10240 bytes)"),
        "{m}"
    );
    assert!(
        !m.contains(&"a".repeat(65)) && m.contains("use \"block\" or \"fail\""),
        "{m}"
    );

    let e = toml_err(format!("[topics.{name}]\ntimestamps = 1\n"));
    assert!(
        matches!(&e, ConfigError::WrongType { key, .. } if *key == format!("topics.{name:?}.timestamps")),
        "{e:?}"
    );
    // The key path `topics."aaa…".timestamps` is cut as a whole.
    let m = msg(&e);
    assert!(
        m.starts_with("`topics.\"aaaa") && m.contains("…` (220 bytes)"),
        "{m}"
    );
    assert!(
        !m.contains(&"a".repeat(65)) && m.contains("true or false"),
        "{m}"
    );
}
