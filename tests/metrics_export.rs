//! `Metrics::export` hands a snapshot to the `metrics` facade: checked with
//! `metrics-util`'s debugging recorder.
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use pinbus::{Engine, SubscribeOptions};

#[test]
fn a_snapshot_exports_counters_and_gauges_with_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let engine = Engine::builder().workers(1).build().unwrap();
    let orders = engine.topic::<u32>("orders").unwrap();
    orders
        .subscribe_with(|_| (), SubscribeOptions::new().name("audit"))
        .unwrap();
    for i in 0..7 {
        orders.publish(i).unwrap();
    }
    engine.shutdown();
    let snapshot = engine.metrics();
    metrics::with_local_recorder(&recorder, || snapshot.export());

    let values = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: (&str, &str)| {
        values
            .iter()
            .find(|(key, ..)| {
                key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == label.0 && l.value() == label.1)
            })
            .map(|(key, _, _, value)| (key.kind(), value))
            .unwrap_or_else(|| panic!("no {name} {label:?} in {values:#?}"))
    };
    assert_eq!(
        find("pinbus_topic_published_total", ("topic", "orders")),
        (MetricKind::Counter, &DebugValue::Counter(7))
    );
    assert_eq!(
        find(
            "pinbus_subscription_handled_total",
            ("subscription", "audit")
        ),
        (MetricKind::Counter, &DebugValue::Counter(7))
    );
    let (kind, lag) = find("pinbus_subscription_lag", ("subscription", "audit"));
    assert_eq!(
        (kind, lag),
        (MetricKind::Gauge, &DebugValue::Gauge(0.0.into()))
    );
    let (kind, _) = find("pinbus_worker_busy_share", ("worker", "0"));
    assert_eq!(kind, MetricKind::Gauge);
}
