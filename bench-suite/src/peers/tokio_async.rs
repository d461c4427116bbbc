//! S9's tokio peers, used from tasks: every task runs on a tokio
//! current-thread runtime of its own thread ([`task_thread`]).
//!
//! - round trip: `tokio::sync::mpsc` request carrying a `oneshot` reply
//!   sender, to a server task on the consumer core that does the trivial
//!   work every round-trip server does (`black_box` of the value) and
//!   replies;
//! - stream: the producer thread `blocking_send`s into a bounded
//!   `tokio::sync::mpsc` (waits for room: lossless), or `send`s into a
//!   `tokio::sync::broadcast` (never waits: lossy); a task on the consumer
//!   core `recv().await`s and feeds the tally, counting
//!   `RecvError::Lagged(n)` as `n` events lost.

use std::future::Future;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::cores;
use crate::harness::{
    join_task, task_thread, AsyncCall, AsyncRoundTripRig, Ctx, Load, Res, Rig, SendFn, Sub,
};
use crate::probe::{Probe, Tally};

/// A request: the value and where to send the reply.
type Request = (u64, oneshot::Sender<u64>);

/// The client of the mpsc + oneshot round trip.
#[derive(Debug)]
pub struct MpscClient {
    tx: mpsc::Sender<Request>,
}

impl AsyncCall for MpscClient {
    async fn call(&mut self, v: u64) -> Res<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((v, reply))
            .await
            .map_err(|_| "tokio mpsc: server gone".to_string())?;
        match answer.await {
            Ok(r) if r == v => Ok(()),
            Ok(_) => Err("tokio mpsc: reply out of order".into()),
            Err(_) => Err("tokio mpsc: server dropped the reply".into()),
        }
    }
}

/// S9 round trip: mpsc request + oneshot reply, server task on the
/// consumer core (it ends when the client drops its sender).
pub fn mpsc_round_trip(ctx: &Ctx) -> Res<AsyncRoundTripRig<MpscClient>> {
    let (tx, mut rx) = mpsc::channel::<Request>(ctx.capacity);
    let server = task_thread("server", cores::consumer(), async move {
        while let Some((v, reply)) = rx.recv().await {
            // A client gone mid-call shows as its own error.
            let _ = reply.send(std::hint::black_box(v));
        }
        Ok(())
    })?;
    Ok(AsyncRoundTripRig {
        client: MpscClient { tx },
        teardown: Box::new(move || join_task(server)),
    })
}

/// A consumer task on the consumer core; the rig around it.
fn stream_rig<F>(load: Load, send: SendFn, consume: impl FnOnce(Tally) -> F) -> Res<Rig>
where
    F: Future<Output = Res<()>> + Send + 'static,
{
    let (warm, total) = load.marks(1);
    let probe = Probe::new();
    let tally = Tally::new(probe.clone(), warm, total);
    let join = task_thread("consumer", cores::consumer(), consume(tally))?;
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: vec![send],
        churn: None,
        teardown: Box::new(move || join_task(join)),
        copies: 1,
        per_subscriber: false,
    })
}

/// S9 stream, bounded mpsc of `capacity`: `blocking_send` → `recv().await`.
pub fn mpsc_stream(ctx: &Ctx, load: Load) -> Res<Rig> {
    let (tx, mut rx) = mpsc::channel::<u64>(ctx.capacity);
    let send: SendFn = Box::new(move |start, n| {
        for i in start..start + n {
            tx.blocking_send(i)
                .map_err(|_| "tokio mpsc: receiver gone".to_string())?;
        }
        Ok(())
    });
    stream_rig(load, send, |mut tally| async move {
        while let Some(v) = rx.recv().await {
            tally.add(v);
            if tally.finished() {
                return Ok(());
            }
        }
        Err("tokio mpsc: closed before the last event".into())
    })
}

/// S9 stream, broadcast of `capacity`: `send` → `recv().await`; lagged
/// events are counted lost.
pub fn broadcast_stream(ctx: &Ctx, load: Load) -> Res<Rig> {
    let (tx, mut rx) = broadcast::channel::<u64>(ctx.capacity);
    let send: SendFn = Box::new(move |start, n| {
        for i in start..start + n {
            tx.send(i)
                .map_err(|_| "tokio broadcast: no receiver".to_string())?;
        }
        Ok(())
    });
    stream_rig(load, send, |mut tally| async move {
        loop {
            match rx.recv().await {
                Ok(v) => tally.add(v),
                Err(broadcast::error::RecvError::Lagged(n)) => tally.lag(n),
                Err(broadcast::error::RecvError::Closed) => {
                    return Err("tokio broadcast: closed before the last event".into())
                }
            }
            if tally.finished() {
                return Ok(());
            }
        }
    })
}
