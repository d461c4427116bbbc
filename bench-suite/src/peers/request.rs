//! S8's request/response pairs for the channel peers: a request channel and
//! a reply channel between the client and a server thread pinned to the
//! consumer core. The server does the trivial work every S8 server does
//! (`black_box` of the value) and sends the value back.
//!
//! - crossbeam-channel: bounded channels, the server blocks in `recv`, the
//!   client `send`s then blocks in `recv` (the crate's own waiting: a short
//!   spin, then park);
//! - rtrb: two rings, both ends busy-poll (`pop` in a spin loop).

use std::thread;

use crate::cores;
use crate::harness::{Ctx, Res, RoundTripRig};

/// Spawns the server thread on the consumer core.
fn server(body: impl FnOnce() + Send + 'static) -> Res<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            cores::pin(cores::consumer());
            body();
        })
        .map_err(|e| format!("cannot spawn the server thread: {e}"))
}

/// Joins the server once the client's ends are dropped.
fn join(server: thread::JoinHandle<()>) -> crate::harness::Teardown {
    Box::new(move || {
        server
            .join()
            .map_err(|_| "the server thread panicked".to_string())
    })
}

/// crossbeam-channel: blocking `recv` on both sides.
pub fn crossbeam(ctx: &Ctx) -> Res<RoundTripRig> {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(ctx.capacity);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(ctx.capacity);
    let join = join(server(move || {
        // Ends when the client drops its request sender.
        while let Ok(v) = req_rx.recv() {
            if rep_tx.send(std::hint::black_box(v)).is_err() {
                return;
            }
        }
    })?);
    Ok(RoundTripRig {
        call: Box::new(move |v| {
            req_tx
                .send(v)
                .map_err(|_| "crossbeam-channel: server gone".to_string())?;
            match rep_rx.recv() {
                Ok(r) if r == v => Ok(()),
                Ok(_) => Err("crossbeam-channel: reply out of order".into()),
                Err(_) => Err("crossbeam-channel: server gone".into()),
            }
        }),
        teardown: join,
    })
}

/// rtrb: two rings, busy-polling on both sides.
pub fn rtrb(ctx: &Ctx) -> Res<RoundTripRig> {
    let (mut req_tx, mut req_rx) = rtrb::RingBuffer::<u64>::new(ctx.capacity);
    let (mut rep_tx, mut rep_rx) = rtrb::RingBuffer::<u64>::new(ctx.capacity);
    let join = join(server(move || loop {
        match req_rx.pop() {
            Ok(v) => {
                // One request in flight: the reply ring always has room.
                if rep_tx.push(std::hint::black_box(v)).is_err() {
                    return;
                }
            }
            Err(_) if req_rx.is_abandoned() => return,
            Err(_) => std::hint::spin_loop(),
        }
    })?);
    Ok(RoundTripRig {
        call: Box::new(move |v| {
            req_tx
                .push(v)
                .map_err(|_| "rtrb: request ring full".to_string())?;
            loop {
                match rep_rx.pop() {
                    Ok(r) if r == v => return Ok(()),
                    Ok(_) => return Err("rtrb: reply out of order".into()),
                    Err(_) if rep_rx.is_abandoned() => return Err("rtrb: server gone".into()),
                    Err(_) => std::hint::spin_loop(),
                }
            }
        }),
        teardown: join,
    })
}
