//! `publish_async` (issue 16): awaits room under `Block` without blocking
//! the thread, is `try_publish` under `Fail`, never blocks a worker, and is
//! cancel-safe (a dropped future publishes nothing, never half an event);
//! `Receipt` is a future woken by the completing worker.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{engine, eventually, Log};
use pinbus::{Backpressure, IdleStrategy, PublishError, TopicOptions};

/// A waker that counts its wake-ups.
struct Count(AtomicU64);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A handler stuck until `release` is dropped or sent to.
fn gate() -> (mpsc::Sender<()>, impl FnMut(&pinbus::Event<u64>) + Send) {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    (tx, move |_: &pinbus::Event<u64>| {
        let _ = rx.lock().unwrap().recv();
    })
}

#[test]
fn a_full_block_topic_makes_publish_async_pending_and_room_wakes_it() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine.topic::<u64>("a.block").unwrap();
    let log = Log::new();
    let (release, mut stuck) = gate();
    let l = log.clone();
    topic
        .subscribe(move |ev| {
            stuck(ev);
            l.push(**ev);
        })
        .unwrap();
    // Fill the lane (and the event the handler holds).
    let mut accepted = 0;
    while topic.try_publish(accepted).is_ok() {
        accepted += 1;
    }
    let count = Arc::new(Count(AtomicU64::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(topic.publish_async(accepted));
    assert!(fut.as_mut().poll(&mut cx).is_pending(), "no room: pending");
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    drop(release); // the handler runs on: room appears, the consumer wakes us
    assert!(
        eventually(Duration::from_secs(10), || count.0.load(Ordering::SeqCst)
            > 0),
        "woken by the consumer"
    );
    let mut done = fut.as_mut().poll(&mut cx);
    for _ in 0..1000 {
        if done.is_ready() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        done = fut.as_mut().poll(&mut cx);
    }
    assert!(matches!(done, Poll::Ready(Ok(()))));
    engine.shutdown();
    let want: Vec<u64> = (0..=accepted).collect();
    assert_eq!(log.snapshot(), want);
}

#[test]
fn a_dropped_publish_async_future_publishes_nothing() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine.topic::<u64>("a.cancel").unwrap();
    let log = Log::new();
    let (release, mut stuck) = gate();
    let l = log.clone();
    topic
        .subscribe(move |ev| {
            stuck(ev);
            l.push(**ev);
        })
        .unwrap();
    let mut accepted = 0;
    while topic.try_publish(accepted).is_ok() {
        accepted += 1;
    }
    let waker = Waker::from(Arc::new(Count(AtomicU64::new(0))));
    let mut cx = Context::from_waker(&waker);
    {
        let mut fut = pin!(topic.publish_async(999));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    } // dropped while waiting
    drop(release);
    // A later publish goes through; the cancelled event never shows up.
    futures::executor::block_on(topic.publish_async(1_000)).unwrap();
    engine.shutdown();
    let mut want: Vec<u64> = (0..accepted).collect();
    want.push(1_000);
    assert_eq!(log.snapshot(), want);
}

#[test]
fn publish_async_on_a_fail_topic_is_try_publish() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine
        .topic_with::<u64>(
            "a.fail",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let (release, stuck) = gate();
    topic.subscribe(stuck).unwrap();
    let refused = futures::executor::block_on(async {
        for i in 0..100 {
            if let Err(e) = topic.publish_async(i).await {
                return Some(e);
            }
        }
        None
    });
    match refused {
        Some(PublishError::Full(_)) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    drop(release);
    engine.shutdown();
}

#[test]
fn publish_async_after_shutdown_is_closed_and_a_waiting_one_learns_it() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine.topic::<u64>("a.closed").unwrap();
    let (release, stuck) = gate();
    topic.subscribe(stuck).unwrap();
    while topic.try_publish(0).is_ok() {}
    let t = topic.clone();
    let waiter = std::thread::spawn(move || futures::executor::block_on(t.publish_async(7)));
    std::thread::sleep(Duration::from_millis(50));
    let shutdown = std::thread::spawn(move || engine.shutdown());
    std::thread::sleep(Duration::from_millis(50));
    drop(release);
    match waiter.join().unwrap() {
        Err(PublishError::Closed(7)) | Ok(()) => {}
        other => panic!("{other:?}"),
    }
    shutdown.join().unwrap();
    assert!(matches!(
        futures::executor::block_on(topic.publish_async(8)),
        Err(PublishError::Closed(8))
    ));
}

#[test]
fn publish_async_from_a_handler_never_blocks_the_worker() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let out = engine.topic::<u64>("a.out").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    out.subscribe(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let input = engine.topic::<u64>("a.in").unwrap();
    let o = out.clone();
    input
        .subscribe(move |ev| {
            // The lane toward this same worker is tiny: most of these go to
            // the worker's backlog instead of waiting.
            for k in 0..16 {
                futures::executor::block_on(o.publish_async(**ev * 16 + k)).unwrap();
            }
        })
        .unwrap();
    for i in 0..8 {
        input.publish(i).unwrap();
    }
    let report = engine.shutdown_timeout(Duration::from_secs(20));
    assert!(report.complete);
    assert_eq!(seen.load(Ordering::SeqCst), 128);
}

#[test]
fn a_receipt_awaited_on_tokio_is_woken_by_the_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = engine(2, IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("a.receipt").unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    topic
        .subscribe(move |_| {
            std::thread::sleep(Duration::from_millis(2));
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    rt.block_on(async {
        for i in 0..20 {
            let r = topic.publish_tracked(i).unwrap();
            r.await;
            assert_eq!(handled.load(Ordering::SeqCst), i + 1);
        }
    });
    // And on a multi-thread runtime, many receipts at once.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let receipts: Vec<_> = (0..50).map(|i| topic.publish_tracked(i).unwrap()).collect();
        let tasks: Vec<_> = receipts.into_iter().map(tokio::spawn).collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(handled.load(Ordering::SeqCst), 70);
    engine.shutdown();
}

/// A Block topic whose one lane (capacity 2) is full behind a stuck
/// handler that logs what it handles: the topic, the log, the release.
fn full_block_topic(
    engine: &pinbus::Engine,
    name: &str,
) -> (pinbus::Topic<u64>, Log<u64>, mpsc::Sender<()>, u64) {
    let topic = engine
        .topic_with::<u64>(
            name,
            TopicOptions::default().backpressure(Backpressure::Block),
        )
        .unwrap();
    let log = Log::new();
    let (release, mut stuck) = gate();
    let l = log.clone();
    topic
        .subscribe(move |ev| {
            stuck(ev);
            l.push(**ev);
        })
        .unwrap();
    let mut accepted = 0;
    while topic.try_publish(accepted).is_ok() {
        accepted += 1;
    }
    (topic, log, release, accepted)
}

#[test]
fn publish_tracked_async_awaits_room_then_returns_a_receipt_that_completes() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let (topic, log, release, accepted) = full_block_topic(&engine, "t.block");
    let count = Arc::new(Count(AtomicU64::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(topic.publish_tracked_async(accepted));
    assert!(fut.as_mut().poll(&mut cx).is_pending(), "no room: pending");
    drop(release);
    assert!(
        eventually(Duration::from_secs(10), || count.0.load(Ordering::SeqCst)
            > 0),
        "woken by the consumer"
    );
    let mut done = fut.as_mut().poll(&mut cx);
    for _ in 0..1000 {
        if done.is_ready() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        done = fut.as_mut().poll(&mut cx);
    }
    let Poll::Ready(Ok(receipt)) = done else {
        panic!("expected a receipt, got {done:?}");
    };
    futures::executor::block_on(receipt);
    // The receipt completed: the handler has handled the event.
    assert_eq!(log.snapshot().last(), Some(&accepted));
    engine.shutdown();
    let want: Vec<u64> = (0..=accepted).collect();
    assert_eq!(log.snapshot(), want);
}

#[test]
fn a_dropped_publish_tracked_async_future_publishes_nothing() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let (topic, log, release, accepted) = full_block_topic(&engine, "t.cancel");
    let waker = Waker::from(Arc::new(Count(AtomicU64::new(0))));
    let mut cx = Context::from_waker(&waker);
    {
        let mut fut = pin!(topic.publish_tracked_async(999));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    } // dropped while waiting
    drop(release);
    let receipt = futures::executor::block_on(topic.publish_tracked_async(1_000)).unwrap();
    futures::executor::block_on(receipt);
    let report = engine.shutdown();
    let mut want: Vec<u64> = (0..accepted).collect();
    want.push(1_000);
    assert_eq!(log.snapshot(), want);
    assert_eq!(report.published, accepted + 1);
}

#[test]
fn publish_tracked_async_on_a_fail_topic_is_try_publish_tracked() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine
        .topic_with::<u64>(
            "t.fail",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let (release, stuck) = gate();
    topic.subscribe(stuck).unwrap();
    let (receipts, refused) = futures::executor::block_on(async {
        let mut receipts = Vec::new();
        for i in 0..100 {
            match topic.publish_tracked_async(i).await {
                Ok(r) => receipts.push(r),
                Err(e) => return (receipts, Some(e)),
            }
        }
        (receipts, None)
    });
    assert!(
        matches!(refused, Some(PublishError::Full(_))),
        "{refused:?}"
    );
    drop(release);
    futures::executor::block_on(async {
        for r in receipts {
            r.await;
        }
    });
    engine.shutdown();
}

/// The tokio scenario: a task awaiting room is pending (the runtime thread
/// free), room lets it publish, its receipt completes once handled; a
/// future cancelled by a timeout while waiting publishes nothing.
fn tokio_scenario(rt: tokio::runtime::Runtime, name: &str) {
    let engine = engine(1, IdleStrategy::Park, 2);
    let (topic, log, release, accepted) = full_block_topic(&engine, name);
    let topic = Arc::new(topic);
    rt.block_on(async {
        // Cancelled while waiting for room.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(30), topic.publish_tracked_async(999)).await;
        assert!(cancelled.is_err(), "no room: still waiting at the timeout");
        let t = topic.clone();
        let task = tokio::spawn(async move {
            let receipt = t.publish_tracked_async(accepted).await.unwrap();
            receipt.await;
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!task.is_finished(), "still no room");
        drop(release);
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("room appeared and the receipt completed")
            .unwrap();
        assert_eq!(log.snapshot().last(), Some(&accepted), "handled");
        // Many at once, each awaiting its receipt.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let t = topic.clone();
                tokio::spawn(async move { t.publish_tracked_async(2_000 + i).await.unwrap().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let report = engine.shutdown();
    let seen = log.snapshot();
    assert!(
        !seen.contains(&999),
        "the cancelled event was never published"
    );
    assert_eq!(seen.len() as u64, accepted + 51);
    assert_eq!(report.published, accepted + 51);
}

#[test]
fn publish_tracked_async_under_tokio_current_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio_scenario(rt, "t.tokio.current");
}

#[test]
fn publish_tracked_async_under_tokio_multi_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio_scenario(rt, "t.tokio.multi");
}

#[test]
fn publish_tracked_async_from_a_handler_never_blocks_the_worker() {
    let engine = engine(1, IdleStrategy::Park, 2);
    let out = engine.topic::<u64>("t.out").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    out.subscribe(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let input = engine.topic::<u64>("t.in").unwrap();
    let o = out.clone();
    input
        .subscribe(move |ev| {
            // The receipts are dropped, not awaited: awaiting them here
            // would wait on this very worker.
            for k in 0..16 {
                drop(futures::executor::block_on(o.publish_tracked_async(**ev * 16 + k)).unwrap());
            }
        })
        .unwrap();
    for i in 0..8 {
        input.publish(i).unwrap();
    }
    let report = engine.shutdown_timeout(Duration::from_secs(20));
    assert!(report.complete);
    assert_eq!(seen.load(Ordering::SeqCst), 128);
}
