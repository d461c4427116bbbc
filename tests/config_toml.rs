//! The TOML configuration: a valid file becomes the engine it describes, and
//! every kind of bad file gives a typed `ConfigError` whose message names the
//! key and what to change (guarantee 8).

use std::sync::mpsc;
use std::time::Duration;

use pinbus::{
    Backpressure, Config, ConfigError, Engine, IdleStrategy, Pinning, PublishError, TimerShutdown,
    TopicOptions,
};

/// The cores this machine has online, lowest first.
fn online() -> Vec<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cores = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cores.push(part.parse().unwrap()),
        }
    }
    if cores.is_empty() {
        cores.push(0);
    }
    cores
}

fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected a ConfigError for {text:?}, got {c:?}"),
        Err(e) => e,
    }
}

/// Every key, two workers, pinning left to the OS (valid on any machine).
const FULL: &str = r#"
workers = 2
pinning = "none"
producer_cores = [0]
idle = "park"
lane_capacity = 4
drain_batch = 64
producer_slots = 8
worker_stack_size = 1048576
timer_tick_us = 500
timer_shutdown = "fire-due"

[idle_tuning]
spins = 10
yields = 2
max_sleep_us = 250

[topics."orders.created"]
worker = 1
backpressure = "block"
timestamps = true

[topics."prices.tick"]
worker = 0
backpressure = "fail"
"#;

#[test]
fn full_file_round_trips_into_config() {
    let c = Config::from_toml_str(FULL).unwrap();
    assert_eq!(c.workers, 2);
    assert_eq!(c.pinning, Pinning::None);
    assert_eq!(c.producer_cores, vec![0]);
    assert_eq!(c.idle, IdleStrategy::Park);
    assert_eq!(c.idle_tuning.spins, 10);
    assert_eq!(c.idle_tuning.yields, 2);
    assert_eq!(c.idle_tuning.max_sleep, Duration::from_micros(250));
    assert_eq!(c.lane_capacity, 4);
    assert_eq!(c.drain_batch, 64);
    assert_eq!(c.producer_slots, 8);
    assert_eq!(c.worker_stack_size, Some(1 << 20));
    assert_eq!(c.timer_tick, Duration::from_micros(500));
    assert_eq!(c.timer_shutdown, TimerShutdown::FireDue);
    assert_eq!(
        c.topics["orders.created"],
        TopicOptions::default()
            .worker(1)
            .backpressure(Backpressure::Block)
            .timestamps(true)
    );
    assert_eq!(
        c.topics["prices.tick"],
        TopicOptions::default()
            .worker(0)
            .backpressure(Backpressure::Fail)
    );
}

#[test]
fn configured_topic_lands_on_its_worker() {
    let engine = Engine::from_config(Config::from_toml_str(FULL).unwrap()).unwrap();
    assert_eq!(engine.workers(), 2);
    assert_eq!(engine.producer_cores(), &[0]);
    let orders = engine.topic::<u64>("orders.created").unwrap();
    assert_eq!(orders.subscribe(|_| ()).unwrap().worker(), 1);
    let prices = engine.topic::<u64>("prices.tick").unwrap();
    assert_eq!(prices.subscribe(|_| ()).unwrap().worker(), 0);
    orders.publish_and_wait(7).unwrap();
    assert_eq!(engine.shutdown().handled, 1);
}

#[test]
fn configured_fail_backpressure_returns_full() {
    let engine = Engine::from_config(Config::from_toml_str(FULL).unwrap()).unwrap();
    let prices = engine.topic::<u64>("prices.tick").unwrap();
    // The worker takes the first event and blocks in the handler until the
    // gate opens, so the lane (capacity 4) fills up.
    let (gate, wait) = mpsc::channel::<()>();
    let mut opened = false;
    prices
        .subscribe(move |_| {
            if !opened {
                let _ = wait.recv();
                opened = true;
            }
        })
        .unwrap();
    let mut accepted = 0u64;
    let refused = loop {
        match prices.publish(accepted) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "a lane of 4 never filled up");
    };
    assert!(
        matches!(refused, PublishError::Full(v) if v == accepted),
        "{refused:?}"
    );
    drop(gate);
    let report = engine.shutdown();
    assert_eq!((report.published, report.handled), (accepted, accepted));
}

#[test]
fn topic_with_keeps_explicit_options() {
    let engine = Engine::from_config(Config::from_toml_str(FULL).unwrap()).unwrap();
    let explicit = TopicOptions::default().worker(0);
    let orders = engine
        .topic_with::<u64>("orders.created", explicit)
        .unwrap();
    assert_eq!(orders.subscribe(|_| ()).unwrap().worker(), 0);
    // Reopening with topic() finds the existing topic, whatever the config says.
    engine.topic::<u64>("orders.created").unwrap();
}

#[test]
fn example_file_parses_and_validates() {
    let c = Config::from_toml_file(concat!(env!("CARGO_MANIFEST_DIR"), "/pinbus.toml")).unwrap();
    c.validate().unwrap();
    assert_eq!(c.workers, 1);
    assert_eq!(c.pinning, Pinning::Cores(vec![1]));
    assert_eq!(c.producer_cores, vec![0]);
    assert_eq!(c.idle, IdleStrategy::BusySpin);
    assert_eq!(c.lane_capacity, 65536);
    assert!(c.topics.contains_key("orders.created"));
}

#[test]
fn auto_pinning_leaves_producer_cores_free() {
    let cores = online();
    let producer = cores[0];
    let config = Config::from_toml_str(&format!(
        "pinning = \"auto\"\nproducer_cores = [{producer}]\n"
    ))
    .unwrap();
    let engine = Engine::from_config(config).unwrap();
    let topic = engine.topic::<u8>("where").unwrap();
    let (tx, rx) = mpsc::channel();
    topic
        .subscribe(move |_| {
            let mask: Vec<usize> = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .collect();
            let _ = tx.send(mask);
        })
        .unwrap();
    topic.publish_and_wait(0).unwrap();
    let mask = rx.recv().unwrap();
    if cores.len() >= 2 {
        assert_eq!(mask, vec![*cores.last().unwrap()]);
    }
    assert!(!mask.contains(&producer) || cores.len() < 2, "{mask:?}");
}

#[test]
fn builder_sets_producer_cores_and_topic_options() {
    let engine = Engine::builder()
        .workers(2)
        .producer_cores([0])
        .topic_options("t", TopicOptions::default().worker(1))
        .build()
        .unwrap();
    assert_eq!(engine.producer_cores(), &[0]);
    let t = engine.topic::<u8>("t").unwrap();
    assert_eq!(t.subscribe(|_| ()).unwrap().worker(), 1);
}

// ---- one test per error ----

#[test]
fn unknown_key_names_the_key_and_the_valid_ones() {
    let e = err("workers = 1\nlane_capacty = 1024\n");
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, line: 2, column: 1, .. } if key == "lane_capacty"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("`lane_capacty`") && m.contains("`lane_capacity`"),
        "{m}"
    );
    assert!(m.contains("line 2, column 1"), "{m}");

    let e = err("[topics.\"orders.created\"]\nbackpresure = \"fail\"\n");
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, .. } if key == "topics.\"orders.created\".backpresure"),
        "{e:?}"
    );
    assert!(e.to_string().contains("`backpressure`"), "{e}");
}

#[test]
fn syntax_error_gives_line_and_column() {
    // A string without quotes.
    let e = err("workers = 1\nidle = park\n");
    assert!(
        matches!(
            e,
            ConfigError::TomlSyntax {
                line: 2,
                column: 8,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("TOML syntax error at line 2, column 8"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_key_and_what_it_must_be() {
    let e = err("workers = \"two\"\n");
    assert!(
        matches!(&e, ConfigError::WrongType { key, line: 1, column: 11, .. } if key == "workers"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("`workers`") && m.contains("the string \"two\""),
        "{m}"
    );
    assert!(m.contains("a whole number of 0 or more"), "{m}");

    let e = err("[topics.t]\ntimestamps = \"yes\"\n");
    assert!(e.to_string().contains("`topics.\"t\".timestamps`"), "{e}");
    assert!(e.to_string().contains("true or false"), "{e}");
}

#[test]
fn unknown_core_lists_the_available_ones() {
    let e = err("pinning = [9999]\n");
    assert!(
        matches!(&e, ConfigError::UnknownCore { core: 9999, available } if !available.is_empty()),
        "{e:?}"
    );
    assert!(e.to_string().contains("core 9999"), "{e}");
}

#[test]
fn duplicate_core_is_refused() {
    let e = err("workers = 2\npinning = [0, 0]\n");
    assert!(matches!(e, ConfigError::DuplicateCore { core: 0 }), "{e:?}");
    assert!(
        e.to_string().contains("core 0 is listed more than once"),
        "{e}"
    );
}

#[test]
fn capacity_must_be_a_power_of_two() {
    let e = err("lane_capacity = 1000\n");
    assert!(
        matches!(
            e,
            ConfigError::CapacityNotPowerOfTwo {
                capacity: 1000,
                suggestion: 1024
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("lane_capacity 1000"), "{e}");
    assert!(e.to_string().contains("try 1024"), "{e}");
}

#[test]
fn zero_workers_is_refused() {
    let e = err("workers = 0\n");
    assert!(matches!(e, ConfigError::ZeroWorkers), "{e:?}");
    assert!(e.to_string().contains("workers is 0"), "{e}");
}

#[test]
fn producer_core_may_not_be_a_worker_core() {
    let core = online()[0];
    let e = err(&format!("pinning = [{core}]\nproducer_cores = [{core}]\n"));
    assert!(
        matches!(e, ConfigError::ProducerCoreOverlap { core: c, worker: 0 } if c == core),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains(&format!("core {core} is in producer_cores")),
        "{m}"
    );
    assert!(m.contains("worker 0"), "{m}");
}

#[test]
fn unknown_producer_core_is_refused() {
    let e = err("producer_cores = [9999]\n");
    assert!(
        matches!(e, ConfigError::UnknownProducerCore { core: 9999, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("producer_cores lists core 9999"),
        "{e}"
    );
}

#[test]
fn duplicate_producer_core_is_refused() {
    let e = err("producer_cores = [0, 0]\n");
    assert!(
        matches!(e, ConfigError::DuplicateProducerCore { core: 0 }),
        "{e:?}"
    );
    assert!(e.to_string().contains("more than once"), "{e}");
}

#[test]
fn unknown_idle_strategy_lists_the_valid_ones() {
    let e = err("idle = \"spin\"\n");
    assert!(
        matches!(&e, ConfigError::UnknownIdleStrategy { name, line: 1, column: 8 } if name == "spin"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("idle = \"spin\"") && m.contains("\"busy-spin\""),
        "{m}"
    );
}

#[test]
fn unknown_backpressure_names_the_topic() {
    let e = err("[topics.\"orders.created\"]\nbackpressure = \"drop\"\n");
    assert!(
        matches!(&e, ConfigError::UnknownBackpressure { topic, name, line: 2, .. }
            if topic == "orders.created" && name == "drop"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("'orders.created'") && m.contains("\"fail\""),
        "{m}"
    );
}

#[test]
fn unknown_pinning_mode_is_refused() {
    let e = err("pinning = \"all\"\n");
    assert!(
        matches!(&e, ConfigError::UnknownPinning { name, .. } if name == "all"),
        "{e:?}"
    );
    assert!(e.to_string().contains("\"auto\""), "{e}");
}

#[test]
fn topic_worker_beyond_the_worker_count_is_refused() {
    let e = err("workers = 2\n[topics.t]\nworker = 2\n");
    assert!(
        matches!(&e, ConfigError::TopicWorker { topic, worker: 2, workers: 2 } if topic == "t"),
        "{e:?}"
    );
    assert!(e.to_string().contains("worker = 2"), "{e}");
    // The same check when the options come from the builder.
    let built = Engine::builder()
        .topic_options("t", TopicOptions::default().worker(1))
        .build();
    assert!(matches!(built, Err(ConfigError::TopicWorker { .. })));
}

#[test]
fn missing_file_names_the_path() {
    let path = std::env::temp_dir().join("pinbus-no-such-config.toml");
    let e = Config::from_toml_file(&path).unwrap_err();
    assert!(
        matches!(&e, ConfigError::ReadFile { path: p, source } if *p == path
            && source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    assert!(e.to_string().contains("pinbus-no-such-config.toml"), "{e}");
}

#[test]
fn file_that_is_not_utf8_says_where_and_what_to_do() {
    // "caf\xe9" is Latin-1 for "café": byte 0xE9 at offset 17, line 2, column 6.
    let path = std::env::temp_dir().join(format!("pinbus-latin1-{}.toml", std::process::id()));
    std::fs::write(&path, b"workers = 1\n# caf\xe9\nidle = \"park\"\n").unwrap();
    let e = Config::from_toml_file(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(&e, ConfigError::FileNotUtf8 { path: p, offset: 17, line: 2, column: 6, .. }
            if *p == path),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(m.contains("is not valid UTF-8"), "{m}");
    assert!(m.contains("byte offset 17 (line 2, column 6)"), "{m}");
    assert!(m.contains("save the file as UTF-8"), "{m}");
    assert!(m.contains(&path.display().to_string()), "{m}");
    assert!(!m.contains("permissions"), "{m}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn timer_keys_set_the_timer() {
    for (name, policy) in [
        ("fire-all-now", TimerShutdown::FireAllNow),
        ("fire-due", TimerShutdown::FireDue),
        ("drop", TimerShutdown::Drop),
    ] {
        let c = Config::from_toml_str(&format!(
            "timer_tick_us = 250\ntimer_shutdown = \"{name}\"\n"
        ))
        .unwrap();
        assert_eq!(c.timer_tick, Duration::from_micros(250));
        assert_eq!(c.timer_shutdown, policy);
    }
    // Both ends of the range.
    for (us, tick) in [
        (1, Duration::from_micros(1)),
        (1_000_000, Duration::from_secs(1)),
    ] {
        let c = Config::from_toml_str(&format!("timer_tick_us = {us}\n")).unwrap();
        assert_eq!(c.timer_tick, tick);
    }
    // Missing keys keep the defaults.
    let c = Config::from_toml_str("").unwrap();
    assert_eq!(c.timer_tick, Duration::from_millis(1));
    assert_eq!(c.timer_shutdown, TimerShutdown::FireAllNow);

    // The engine applies the policy: a pending delayed event is dropped.
    let engine =
        Engine::from_config(Config::from_toml_str("timer_shutdown = \"drop\"\n").unwrap()).unwrap();
    let later = engine.topic::<u8>("later").unwrap();
    later.publish_after(Duration::from_secs(60), 1).unwrap();
    let report = engine.shutdown();
    assert_eq!((report.timers_dropped, report.published), (1, 0));
}

#[test]
fn timer_tick_out_of_range_names_the_key_and_the_range() {
    for (us, fix) in [(0, "use at least 1µs"), (1_000_001, "use at most 1s")] {
        let e = err(&format!("timer_tick_us = {us}\n"));
        assert!(
            matches!(e, ConfigError::TimerTick { tick, .. } if tick == Duration::from_micros(us)),
            "{e:?}"
        );
        let m = e.to_string();
        assert!(m.contains(fix), "{m}");
        assert!(m.contains("timer_tick_us = 1 to 1000000"), "{m}");
    }
}

#[test]
fn timer_keys_of_the_wrong_type_name_the_key() {
    for text in [
        "timer_tick_us = \"1ms\"\n",
        "timer_tick_us = -5\n",
        "timer_tick_us = 0.5\n",
    ] {
        let e = err(text);
        assert!(
            matches!(&e, ConfigError::WrongType { key, line: 1, column: 17, .. } if key == "timer_tick_us"),
            "{text}: {e:?}"
        );
        let m = e.to_string();
        assert!(m.contains("`timer_tick_us`"), "{m}");
        assert!(
            m.contains("whole number of microseconds from 1 to 1000000"),
            "{m}"
        );
    }
    let e = err("timer_shutdown = 1\n");
    assert!(
        matches!(&e, ConfigError::WrongType { key, .. } if key == "timer_shutdown"),
        "{e:?}"
    );
    assert!(e.to_string().contains("\"fire-all-now\""), "{e}");
}

#[test]
fn unknown_timer_shutdown_lists_the_valid_ones() {
    let e = err("workers = 1\ntimer_shutdown = \"fire-all\"\n");
    assert!(
        matches!(&e, ConfigError::UnknownTimerShutdown { name, line: 2, column: 18 } if name == "fire-all"),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(m.contains("timer_shutdown = \"fire-all\""), "{m}");
    assert!(
        m.contains("\"fire-all-now\"") && m.contains("\"fire-due\"") && m.contains("\"drop\""),
        "{m}"
    );
}

#[test]
fn extreme_idle_tuning_parses_and_runs() {
    // Extreme but meaningful: "spin once, then yield (nearly) forever",
    // "spin (nearly) forever", "never spin or yield", the longest sleep.
    let configs = [
        "idle = \"park\"\n[idle_tuning]\nspins = 1\nyields = 4294967295\n",
        "idle = \"backoff\"\n[idle_tuning]\nspins = 1\nyields = 4294967295\n",
        "idle = \"yield\"\n[idle_tuning]\nspins = 4294967295\nyields = 4294967295\n",
        "idle = \"park\"\n[idle_tuning]\nspins = 4294967295\nyields = 1\n",
        "idle = \"park\"\n[idle_tuning]\nspins = 0\nyields = 0\nmax_sleep_us = 0\n",
        "idle = \"backoff\"\n[idle_tuning]\nspins = 0\nyields = 0\n\
         max_sleep_us = 9223372036854775807\n",
    ];
    for text in configs {
        let c = Config::from_toml_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let (tx, rx) = mpsc::channel();
        let text = text.to_owned();
        // Bounded: a worker that overflowed its idle arithmetic would leave
        // publish_and_wait hanging.
        std::thread::spawn(move || {
            let engine = Engine::from_config(c).unwrap();
            let topic = engine.topic::<u64>("t").unwrap();
            topic.subscribe(|_| ()).unwrap();
            topic.publish_and_wait(1).unwrap();
            let _ = tx.send(engine.shutdown().handled);
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(handled) => assert_eq!(handled, 1, "{text}"),
            Err(e) => panic!("{text}: the engine did not handle one event and shut down: {e}"),
        }
    }
    let c = Config::from_toml_str("[idle_tuning]\nmax_sleep_us = 9223372036854775807\n").unwrap();
    assert_eq!(
        c.idle_tuning.max_sleep,
        Duration::from_micros(i64::MAX as u64)
    );
}
