//! flume, bounded: MPMC, blocking send.

use flume::{Receiver, Sender, TryRecvError};

use super::channel::{Channel, Recv, Rx, Tx};
use crate::harness::Res;
use crate::payload::Payload;

/// The flume peer.
#[derive(Debug)]
pub struct Flume;

impl<P: Payload> Tx<P> for Sender<P> {
    #[inline]
    fn send(&mut self, v: P) -> Res<()> {
        Sender::send(self, v).map_err(|_| "flume: receiver gone".to_string())
    }
}

impl<P: Payload> Rx<P> for Receiver<P> {
    #[inline]
    fn recv(&mut self) -> Recv<P> {
        match self.try_recv() {
            Ok(v) => Recv::Item(v),
            Err(TryRecvError::Empty) => Recv::Empty,
            Err(TryRecvError::Disconnected) => Recv::Closed,
        }
    }
}

impl Channel for Flume {
    const BATCH: bool = false;
    type Tx<P: Payload> = Sender<P>;
    type Rx<P: Payload> = Receiver<P>;

    fn pair<P: Payload>(capacity: usize) -> (Sender<P>, Receiver<P>) {
        flume::bounded(capacity)
    }

    fn clone_tx<P: Payload>(tx: &Sender<P>) -> Option<Sender<P>> {
        Some(tx.clone())
    }
}
