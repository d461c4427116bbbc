//! crossbeam-channel, bounded: MPMC, blocking send (spin, then park).

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::channel::{Channel, Recv, Rx, Tx};
use crate::harness::Res;
use crate::payload::Payload;

/// The crossbeam-channel peer.
#[derive(Debug)]
pub struct Crossbeam;

impl<P: Payload> Tx<P> for Sender<P> {
    #[inline]
    fn send(&mut self, v: P) -> Res<()> {
        Sender::send(self, v).map_err(|_| "crossbeam-channel: receiver gone".to_string())
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

impl Channel for Crossbeam {
    const BATCH: bool = false;
    type Tx<P: Payload> = Sender<P>;
    type Rx<P: Payload> = Receiver<P>;

    fn pair<P: Payload>(capacity: usize) -> (Sender<P>, Receiver<P>) {
        crossbeam_channel::bounded(capacity)
    }

    fn clone_tx<P: Payload>(tx: &Sender<P>) -> Option<Sender<P>> {
        Some(tx.clone())
    }
}
