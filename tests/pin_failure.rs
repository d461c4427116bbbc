//! OS refusals, injected with the feature `fault-injection` (on a healthy
//! machine they do not happen): a refused pin is `ConfigError::PinFailed` and
//! `build` stops the workers it had started; a refused timer thread is
//! `PublishError::TimerUnavailable` with the event handed back.

use pinbus::{ConfigError, Engine, Pinning};

#[test]
fn a_refused_pin_is_a_typed_error() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let Some(core) = cores.last().map(|c| c.id) else {
        return;
    };
    pinbus::fault::refuse_pinning_to(core);
    let err = Engine::builder()
        .workers(1)
        .pinning(Pinning::Cores(vec![core]))
        .build()
        .expect_err("pinning was made to fail");
    assert!(
        matches!(err, ConfigError::PinFailed { worker: 0, core: c } if c == core),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("could not pin worker 0") && text.contains("Pinning::None"),
        "{text}"
    );
}

/// `PublishError::TimerUnavailable`: when the OS refuses the timer thread,
/// `publish_after` hands the event back with a message that says what to do,
/// and a later call starts the thread once the OS allows it.
#[test]
fn a_refused_timer_thread_hands_the_event_back() {
    use std::time::Duration;
    let engine = Engine::builder().build().unwrap();
    let topic = engine.topic::<String>("later").unwrap();
    pinbus::fault::refuse_timer_thread(true);
    let err = topic
        .publish_after(Duration::from_millis(1), "kept".to_owned())
        .expect_err("the timer thread was made to fail");
    pinbus::fault::refuse_timer_thread(false);
    assert!(
        matches!(&err, pinbus::PublishError::TimerUnavailable(e) if e == "kept"),
        "{err:?}"
    );
    assert!(err.to_string().contains("thread limit"), "{err}");
    assert_eq!(err.into_inner(), "kept");
    let (tx, rx) = std::sync::mpsc::channel();
    topic
        .subscribe(move |ev| tx.send((**ev).clone()).unwrap())
        .unwrap();
    topic
        .publish_after(Duration::from_millis(1), "now it works".to_owned())
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        "now it works"
    );
    engine.shutdown();
}
