//! `publish_async` (issue 16): awaits room under `Block` without blocking
//! the thread, is `try_publish` under `Fail`, never blocks a worker, and is
//! cancel-safe (a dropped future publishes nothing, never half an event);
//! `Receipt` is a future woken by the completing worker.

mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{engine, eventually, Log};
use pinbus::{Backpressure, Engine, IdleStrategy, PublishError, Topic, TopicOptions};

/// What most tests start from: a one-worker engine with lanes of 2 slots,
/// and a topic whose one subscriber is stuck until `release` is sent to or
/// dropped, then logs what it handles.
struct Stuck {
    engine: Engine,
    topic: Topic<u64>,
    log: Log<u64>,
    release: mpsc::Sender<()>,
    /// Events `0..accepted` taken before the lane was full (0 unless
    /// filled).
    accepted: u64,
}

/// The [`Stuck`] setup for topic `name` with `backpressure`; with `fill`,
/// the lane (and the event the handler holds) is filled by `try_publish`.
fn stuck_topic(name: &str, backpressure: Backpressure, fill: bool) -> Stuck {
    let engine = engine(1, IdleStrategy::Park, 2);
    let topic = engine
        .topic_with::<u64>(name, TopicOptions::default().backpressure(backpressure))
        .unwrap();
    let log = Log::new();
    let (release, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let l = log.clone();
    topic
        .subscribe(move |ev| {
            let _ = rx.lock().unwrap().recv();
            l.push(**ev);
        })
        .unwrap();
    let mut accepted = 0;
    while fill && topic.try_publish(accepted).is_ok() {
        accepted += 1;
    }
    Stuck {
        engine,
        topic,
        log,
        release,
        accepted,
    }
}

/// A waker that counts its wake-ups.
struct Count(AtomicU64);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls futures by hand with a [`Count`] waker.
struct Poller {
    count: Arc<Count>,
    waker: Waker,
}

impl Poller {
    fn new() -> Self {
        let count = Arc::new(Count(AtomicU64::new(0)));
        let waker = Waker::from(count.clone());
        Poller { count, waker }
    }

    fn poll<F: Future>(&self, fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(&self.waker))
    }

    fn wakes(&self) -> u64 {
        self.count.0.load(Ordering::SeqCst)
    }

    /// Waits to be woken, then polls until the future is ready (5 s).
    fn woken_then_ready<F: Future>(&self, mut fut: Pin<&mut F>) -> Poll<F::Output> {
        assert!(
            eventually(Duration::from_secs(10), || self.wakes() > 0),
            "woken by the consumer"
        );
        let mut done = self.poll(fut.as_mut());
        for _ in 0..1000 {
            if done.is_ready() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            done = self.poll(fut.as_mut());
        }
        done
    }
}

/// A handler on topic `<prefix>.in` publishes 16 events to `<prefix>.out`
/// (on its own worker, lanes of 2) with `publish` for each of 8 events; the
/// worker must never block on it, so shutdown completes with all 128.
fn handler_publishes(prefix: &str, publish: fn(&Topic<u64>, u64)) {
    let engine = engine(1, IdleStrategy::Park, 2);
    let out = engine.topic::<u64>(&format!("{prefix}.out")).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    out.subscribe(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let input = engine.topic::<u64>(&format!("{prefix}.in")).unwrap();
    input
        .subscribe(move |ev| {
            // The lane toward this same worker is tiny: most of these go to
            // the worker's backlog instead of waiting.
            for k in 0..16 {
                publish(&out, **ev * 16 + k);
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
fn a_full_block_topic_makes_publish_async_pending_and_room_wakes_it() {
    let s = stuck_topic("a.block", Backpressure::Block, true);
    let poller = Poller::new();
    let mut fut = pin!(s.topic.publish_async(s.accepted));
    assert!(poller.poll(fut.as_mut()).is_pending(), "no room: pending");
    assert_eq!(poller.wakes(), 0);
    drop(s.release); // the handler runs on: room appears, the consumer wakes us
    let done = poller.woken_then_ready(fut);
    assert!(matches!(done, Poll::Ready(Ok(()))));
    s.engine.shutdown();
    let want: Vec<u64> = (0..=s.accepted).collect();
    assert_eq!(s.log.snapshot(), want);
}

#[test]
fn a_dropped_publish_async_future_publishes_nothing() {
    let s = stuck_topic("a.cancel", Backpressure::Block, true);
    {
        let mut fut = pin!(s.topic.publish_async(999));
        assert!(Poller::new().poll(fut.as_mut()).is_pending());
    } // dropped while waiting
    drop(s.release);
    // A later publish goes through; the cancelled event never shows up.
    futures::executor::block_on(s.topic.publish_async(1_000)).unwrap();
    s.engine.shutdown();
    let mut want: Vec<u64> = (0..s.accepted).collect();
    want.push(1_000);
    assert_eq!(s.log.snapshot(), want);
}

#[test]
fn publish_async_on_a_fail_topic_is_try_publish() {
    let s = stuck_topic("a.fail", Backpressure::Fail, false);
    let refused = futures::executor::block_on(async {
        for i in 0..100 {
            if let Err(e) = s.topic.publish_async(i).await {
                return Some(e);
            }
        }
        None
    });
    match refused {
        Some(PublishError::Full(_)) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    drop(s.release);
    s.engine.shutdown();
}

#[test]
fn publish_async_after_shutdown_is_closed_and_a_waiting_one_learns_it() {
    let s = stuck_topic("a.closed", Backpressure::Block, true);
    let t = s.topic.clone();
    let waiter = std::thread::spawn(move || futures::executor::block_on(t.publish_async(7)));
    std::thread::sleep(Duration::from_millis(50));
    let shutdown = std::thread::spawn(move || s.engine.shutdown());
    std::thread::sleep(Duration::from_millis(50));
    drop(s.release);
    match waiter.join().unwrap() {
        Err(PublishError::Closed(7)) | Ok(()) => {}
        other => panic!("{other:?}"),
    }
    shutdown.join().unwrap();
    assert!(matches!(
        futures::executor::block_on(s.topic.publish_async(8)),
        Err(PublishError::Closed(8))
    ));
}

#[test]
fn publish_async_from_a_handler_never_blocks_the_worker() {
    handler_publishes("a", |out, v| {
        futures::executor::block_on(out.publish_async(v)).unwrap();
    });
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

#[test]
fn publish_tracked_async_awaits_room_then_returns_a_receipt_that_completes() {
    let s = stuck_topic("t.block", Backpressure::Block, true);
    let poller = Poller::new();
    let mut fut = pin!(s.topic.publish_tracked_async(s.accepted));
    assert!(poller.poll(fut.as_mut()).is_pending(), "no room: pending");
    drop(s.release);
    let done = poller.woken_then_ready(fut);
    let Poll::Ready(Ok(receipt)) = done else {
        panic!("expected a receipt, got {done:?}");
    };
    futures::executor::block_on(receipt);
    // The receipt completed: the handler has handled the event.
    assert_eq!(s.log.snapshot().last(), Some(&s.accepted));
    s.engine.shutdown();
    let want: Vec<u64> = (0..=s.accepted).collect();
    assert_eq!(s.log.snapshot(), want);
}

#[test]
fn a_dropped_publish_tracked_async_future_publishes_nothing() {
    let s = stuck_topic("t.cancel", Backpressure::Block, true);
    {
        let mut fut = pin!(s.topic.publish_tracked_async(999));
        assert!(Poller::new().poll(fut.as_mut()).is_pending());
    } // dropped while waiting
    drop(s.release);
    let receipt = futures::executor::block_on(s.topic.publish_tracked_async(1_000)).unwrap();
    futures::executor::block_on(receipt);
    let report = s.engine.shutdown();
    let mut want: Vec<u64> = (0..s.accepted).collect();
    want.push(1_000);
    assert_eq!(s.log.snapshot(), want);
    assert_eq!(report.published, s.accepted + 1);
}

#[test]
fn publish_tracked_async_on_a_fail_topic_is_try_publish_tracked() {
    let s = stuck_topic("t.fail", Backpressure::Fail, false);
    let (receipts, refused) = futures::executor::block_on(async {
        let mut receipts = Vec::new();
        for i in 0..100 {
            match s.topic.publish_tracked_async(i).await {
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
    drop(s.release);
    futures::executor::block_on(async {
        for r in receipts {
            r.await;
        }
    });
    s.engine.shutdown();
}

/// The tokio scenario: a task awaiting room is pending (the runtime thread
/// free), room lets it publish, its receipt completes once handled; a
/// future cancelled by a timeout while waiting publishes nothing.
fn tokio_scenario(rt: tokio::runtime::Runtime, name: &str) {
    // Destructured: the async blocks below take the parts one by one.
    let Stuck {
        engine,
        topic,
        log,
        release,
        accepted,
    } = stuck_topic(name, Backpressure::Block, true);
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
    handler_publishes("t", |out, v| {
        // The receipt is dropped, not awaited: awaiting it here would wait
        // on this very worker.
        drop(futures::executor::block_on(out.publish_tracked_async(v)).unwrap());
    });
}
