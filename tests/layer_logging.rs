//! The `tracing` layers: `Logging` writes one record per event (topic, seq,
//! trace id, attempt, outcome) and `Spans` opens a `pinbus.dispatch` span per
//! sampled dispatch. Handlers run on worker threads, so the test installs a
//! process-wide collector (this file has a single test for that reason).
#![cfg(feature = "tracing")]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pinbus::layer::{Logging, Spans};
use pinbus::{Engine, Event, SubscribeOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Metadata, Subscriber};

/// Keeps every record's fields as text, and the names of opened spans.
#[derive(Clone, Default)]
struct Collector {
    records: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
    next: Arc<AtomicU64>,
}

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = format!("{}: ", span.metadata().name());
        span.record(&mut Text(&mut text));
        self.spans.lock().unwrap().push(text);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &TracingEvent<'_>) {
        let mut text = format!("{} ", event.metadata().level());
        event.record(&mut Text(&mut text));
        self.records.lock().unwrap().push(text);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn logging_records_each_event_and_spans_are_sampled() {
    let collector = Collector::default();
    tracing::subscriber::set_global_default(collector.clone()).unwrap();

    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("logged").unwrap();
    let sub = t
        .subscribe_with(
            |ev: &Event<u32>| {
                if **ev == 3 {
                    Err("three is refused")
                } else {
                    Ok(())
                }
            },
            SubscribeOptions::new()
                .name("audited")
                .layer(Logging)
                .layer(Spans::sampled(2)),
        )
        .unwrap();
    for i in 0..4 {
        let r = t.publish_tracked(i).unwrap();
        r.wait().unwrap();
    }
    engine.shutdown();
    assert_eq!((sub.stats().handled, sub.stats().failed), (3, 1));

    let records = collector.records.lock().unwrap().clone();
    let ours: Vec<_> = records
        .iter()
        .filter(|r| r.contains("pinbus: event"))
        .collect();
    assert_eq!(ours.len(), 4, "{records:#?}");
    for (seq, r) in ours.iter().enumerate() {
        assert!(r.contains("topic=\"logged\""), "{r}");
        assert!(r.contains(&format!("seq={seq} ")), "{r}");
        assert!(r.contains("attempt=1"), "{r}");
        assert!(r.contains("trace_id="), "{r}");
    }
    assert!(ours[0].starts_with("DEBUG") && ours[0].contains("outcome=Handled"));
    assert!(ours[3].starts_with("WARN") && ours[3].contains("reason=\"three is refused\""));

    let spans = collector.spans.lock().unwrap().clone();
    let dispatch: Vec<_> = spans
        .iter()
        .filter(|s| s.starts_with("pinbus.dispatch"))
        .collect();
    assert_eq!(dispatch.len(), 2, "one span per 2 events: {spans:#?}");
    assert!(dispatch[0].contains("seq=1 "), "{}", dispatch[0]);
    assert!(dispatch[1].contains("seq=3 "), "{}", dispatch[1]);
}
