//! rtrb: a wait-free SPSC ring, the practical limit. The producer spins when
//! the ring is full; batches go through `write_chunk_uninit`. Being
//! single-producer, N producers get N rings that the consumer polls.

use rtrb::{Consumer, PopError, Producer, PushError};

use super::channel::{Channel, Recv, Rx, Tx};
use crate::harness::Res;
use crate::payload::Payload;

/// The rtrb peer.
#[derive(Debug)]
pub struct Rtrb;

impl<P: Payload> Tx<P> for Producer<P> {
    #[inline]
    fn send(&mut self, mut v: P) -> Res<()> {
        loop {
            match self.push(v) {
                Ok(()) => return Ok(()),
                Err(PushError::Full(back)) => {
                    if self.is_abandoned() {
                        return Err("rtrb: consumer gone".into());
                    }
                    v = back;
                    std::hint::spin_loop();
                }
            }
        }
    }

    fn send_batch(&mut self, start: u64, n: u64) -> Res<()> {
        loop {
            match self.write_chunk_uninit(n as usize) {
                Ok(chunk) => {
                    chunk.fill_from_iter((start..start + n).map(P::make));
                    return Ok(());
                }
                Err(_) => {
                    if self.is_abandoned() {
                        return Err("rtrb: consumer gone".into());
                    }
                    std::hint::spin_loop();
                }
            }
        }
    }
}

impl<P: Payload> Rx<P> for Consumer<P> {
    #[inline]
    fn recv(&mut self) -> Recv<P> {
        match self.pop() {
            Ok(v) => Recv::Item(v),
            Err(PopError::Empty) if self.is_abandoned() => Recv::Closed,
            Err(PopError::Empty) => Recv::Empty,
        }
    }
}

impl Channel for Rtrb {
    const BATCH: bool = true;
    type Tx<P: Payload> = Producer<P>;
    type Rx<P: Payload> = Consumer<P>;

    fn pair<P: Payload>(capacity: usize) -> (Producer<P>, Consumer<P>) {
        rtrb::RingBuffer::new(capacity)
    }

    fn clone_tx<P: Payload>(_tx: &Producer<P>) -> Option<Producer<P>> {
        None
    }
}
