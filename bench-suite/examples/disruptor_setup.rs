//! Which setup detail moves the `disruptor` crate's 1P→1S u64 rate: a
//! study of the gap between pinbus-bench's S1 figure for the disruptor and
//! other harnesses' figures for the same crate (docs/benchmarks.md,
//! "The disruptor's setup").
//!
//! Every variant is one knob away from "others" (producer on the main thread
//! unpinned, handler pinned, the handler counts and stores its count to an
//! atomic every 1,024 events, no warm-up, clock from the first publish to
//! the end of `drop(producer)`, which joins the handler) or from "suite"
//! (pinbus-bench's S1: producer pinned to core 0, handler to core 1, a
//! warm-up of two ring laps and a tenth of the run, clock from the first
//! measured publish to the handler's own timestamp of the last event).
//! Variants run interleaved, round after round, so a slow phase of the VM
//! hits all of them; the median of the rounds is printed.
//!
//! ```text
//! cargo run --release -p bench-suite --example disruptor_setup -- [rounds] [events]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use disruptor::{build_single_producer, BusySpin, BusySpinWithSpinLoopHint, Producer, Sequence};

/// How often the handler stores its count to the shared atomic.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Publish {
    /// Every event.
    Every,
    /// Every 1,024 events.
    Every1024,
    /// Only at the last event (what the suite's tally does).
    AtLast,
}

/// Where the clock stops.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// After `drop(producer)` returned (it joins the handler thread).
    Drop,
    /// At the handler's timestamp of the last event.
    LastSeen,
}

/// One setup.
#[derive(Clone, Copy, Debug)]
struct Setup {
    name: &'static str,
    publish: Publish,
    stop: Stop,
    pin_producer: bool,
    pin_handler: bool,
    warm_up: bool,
    spin_hint: bool,
    /// The shared counter on its own cache line (else a plain `Arc`).
    padded: bool,
    /// `batch_publish` of 256 events instead of one `publish` per event.
    batch: bool,
    /// Ring size.
    capacity: usize,
}

const OTHERS: Setup = Setup {
    name: "others",
    publish: Publish::Every1024,
    stop: Stop::Drop,
    pin_producer: false,
    pin_handler: true,
    warm_up: false,
    spin_hint: false,
    padded: false,
    batch: false,
    capacity: CAPACITY,
};

const SUITE: Setup = Setup {
    name: "suite",
    publish: Publish::AtLast,
    stop: Stop::LastSeen,
    pin_producer: true,
    pin_handler: true,
    warm_up: true,
    spin_hint: false,
    padded: true,
    batch: false,
    capacity: CAPACITY,
};

const CAPACITY: usize = 65_536;

/// The counter the handler stores to, padded or not.
enum Counter {
    Plain(Arc<AtomicU64>),
    Padded(Arc<CachePadded<AtomicU64>>),
}

impl Counter {
    fn get(&self) -> &AtomicU64 {
        match self {
            Counter::Plain(a) => a,
            Counter::Padded(a) => a,
        }
    }
    fn share(&self) -> Counter {
        match self {
            Counter::Plain(a) => Counter::Plain(a.clone()),
            Counter::Padded(a) => Counter::Padded(a.clone()),
        }
    }
}

/// Publishes `from..to`, one by one or in batches of 256.
#[inline]
fn send(p: &mut impl Producer<u64>, from: u64, to: u64, batch: bool) {
    if batch {
        let mut i = from;
        while i < to {
            let k = 256.min(to - i);
            p.batch_publish(k as usize, |iter| {
                for (j, e) in iter.enumerate() {
                    *e = i + j as u64;
                }
            });
            i += k;
        }
    } else {
        for i in from..to {
            p.publish(|e| *e = i);
        }
    }
}

/// One run of `s`: measured events per second.
fn run(s: Setup, events: u64) -> f64 {
    let warm = if s.warm_up {
        (events / 10).max(2 * s.capacity as u64)
    } else {
        0
    };
    let total = warm + events;
    let count = if s.padded {
        Counter::Padded(Arc::new(CachePadded::new(AtomicU64::new(0))))
    } else {
        Counter::Plain(Arc::new(AtomicU64::new(0)))
    };
    let done_at = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let base = Instant::now();
    let (h_count, h_done) = (count.share(), done_at.clone());
    let mut n = 0u64;
    let mut sum = 0u64;
    let handler = move |e: &u64, _: Sequence, _: bool| {
        sum = sum.wrapping_add(*e);
        n += 1;
        let store = match s.publish {
            Publish::Every => true,
            Publish::Every1024 => n.is_multiple_of(1024) || n == warm || n == total,
            Publish::AtLast => n == warm || n == total,
        };
        if store {
            if n == total {
                h_done.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
                std::hint::black_box(sum);
            }
            h_count.get().store(n, Ordering::Release);
        }
    };
    let mut producer: Box<dyn FnMut(u64, u64)> = if s.spin_hint {
        let b = build_single_producer(s.capacity, || 0u64, BusySpinWithSpinLoopHint);
        let b = if s.pin_handler {
            disruptor::ProcessorSettings::pin_at_core(b, 1)
        } else {
            b
        };
        let mut p = b.handle_events_with(handler).build();
        Box::new(move |from, to| send(&mut p, from, to, s.batch))
    } else {
        let b = build_single_producer(s.capacity, || 0u64, BusySpin);
        let b = if s.pin_handler {
            disruptor::ProcessorSettings::pin_at_core(b, 1)
        } else {
            b
        };
        let mut p = b.handle_events_with(handler).build();
        Box::new(move |from, to| send(&mut p, from, to, s.batch))
    };
    // The producer runs on this thread (a fresh one per run); pin it if asked.
    if s.pin_producer {
        core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
    }
    producer(0, warm);
    if warm > 0 {
        while count.get().load(Ordering::Acquire) < warm {
            std::hint::spin_loop();
        }
    }
    let start = base.elapsed().as_nanos() as u64;
    producer(warm, total);
    drop(producer);
    let dropped = base.elapsed().as_nanos() as u64;
    assert_eq!(count.get().load(Ordering::Acquire), total);
    let end = match s.stop {
        Stop::Drop => dropped,
        Stop::LastSeen => done_at.load(Ordering::Relaxed),
    };
    events as f64 / ((end - start) as f64 / 1e9)
}

/// The median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000_000);
    let setups = [
        OTHERS,
        Setup {
            name: "others, count stored every event",
            publish: Publish::Every,
            ..OTHERS
        },
        Setup {
            name: "others, count stored at the last event only",
            publish: Publish::AtLast,
            ..OTHERS
        },
        Setup {
            name: "others, counter padded",
            padded: true,
            ..OTHERS
        },
        Setup {
            name: "others, clock stops at last event seen",
            stop: Stop::LastSeen,
            ..OTHERS
        },
        Setup {
            name: "others, producer pinned (core 0)",
            pin_producer: true,
            ..OTHERS
        },
        Setup {
            name: "others, handler unpinned",
            pin_handler: false,
            ..OTHERS
        },
        Setup {
            name: "others, warm-up",
            warm_up: true,
            ..OTHERS
        },
        Setup {
            name: "others, BusySpinWithSpinLoopHint",
            spin_hint: true,
            ..OTHERS
        },
        Setup {
            name: "others, batch_publish 256",
            batch: true,
            ..OTHERS
        },
        Setup {
            name: "others, ring of 1,024",
            capacity: 1024,
            ..OTHERS
        },
        SUITE,
        Setup {
            name: "suite, batch_publish 256 (S1 'u64 batch')",
            batch: true,
            ..SUITE
        },
        Setup {
            name: "suite, count stored every 1,024",
            publish: Publish::Every1024,
            padded: false,
            ..SUITE
        },
        Setup {
            name: "suite, count stored every event",
            publish: Publish::Every,
            padded: false,
            ..SUITE
        },
        Setup {
            name: "suite, producer unpinned",
            pin_producer: false,
            ..SUITE
        },
        Setup {
            name: "suite, clock stops at drop",
            stop: Stop::Drop,
            ..SUITE
        },
    ];
    println!("disruptor 4.4 1P->1S u64, capacity {CAPACITY} unless stated, {events} events, {rounds} rounds");
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    for _ in 0..rounds {
        for (i, s) in setups.iter().enumerate() {
            // A fresh thread per run: a pinned producer does not leave this
            // thread pinned for the next variant.
            let s = *s;
            let r = std::thread::spawn(move || run(s, events))
                .join()
                .expect("run panicked");
            rates[i].push(r / 1e6);
        }
    }
    // The first setup is the baseline of the per-round ratios.
    let base = rates[0].clone();
    println!(
        "median M/s · median of per-round ratios to '{}' · [each round, M/s]",
        setups[0].name
    );
    for (s, r) in setups.iter().zip(rates) {
        let all = r
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" ");
        let ratios: Vec<f64> = r.iter().zip(&base).map(|(x, b)| x / b).collect();
        println!(
            "{:>48}: {:>6.1}  {:>5.2}×  [{all}]",
            s.name,
            median(r.clone()),
            median(ratios)
        );
    }
}
