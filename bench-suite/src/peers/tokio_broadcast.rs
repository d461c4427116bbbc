//! tokio::sync::broadcast, used from plain threads (`try_recv`): every
//! receiver sees every event, a slow receiver loses the oldest events
//! (`RecvError::Lagged`), and `send` never waits. Lost events are counted.

use tokio::sync::broadcast::{self, error::TryRecvError, Receiver, Sender};

use super::channel::{Channel, Ends, Recv, Rx, Tx};
use crate::harness::{ChurnFn, Res};
use crate::payload::Payload;

/// The tokio broadcast peer.
#[derive(Debug)]
pub struct TokioBroadcast;

impl<P: Payload> Tx<P> for Sender<P> {
    #[inline]
    fn send(&mut self, v: P) -> Res<()> {
        Sender::send(self, v)
            .map(|_| ())
            .map_err(|_| "tokio broadcast: no receiver".to_string())
    }
}

impl<P: Payload> Rx<P> for Receiver<P> {
    #[inline]
    fn recv(&mut self) -> Recv<P> {
        match self.try_recv() {
            Ok(v) => Recv::Item(v),
            Err(TryRecvError::Empty) => Recv::Empty,
            Err(TryRecvError::Lagged(n)) => Recv::Lagged(n),
            Err(TryRecvError::Closed) => Recv::Closed,
        }
    }
}

impl Channel for TokioBroadcast {
    const BATCH: bool = false;
    type Tx<P: Payload> = Sender<P>;
    type Rx<P: Payload> = Receiver<P>;

    fn pair<P: Payload>(capacity: usize) -> (Sender<P>, Receiver<P>) {
        broadcast::channel(capacity)
    }

    fn clone_tx<P: Payload>(tx: &Sender<P>) -> Option<Sender<P>> {
        Some(tx.clone())
    }

    /// One sender, `n` receivers: one send serves all of them.
    fn fanout<P: Payload>(capacity: usize, n: usize) -> Ends<Self, P> {
        let (tx, rx) = broadcast::channel(capacity);
        let mut rxs = vec![rx];
        while rxs.len() < n {
            rxs.push(tx.subscribe());
        }
        (vec![tx], rxs)
    }

    fn churn<P: Payload>(tx: &Sender<P>) -> Option<ChurnFn> {
        let tx = tx.clone();
        Some(Box::new(move || {
            drop(tx.subscribe());
            Ok(())
        }))
    }
}
