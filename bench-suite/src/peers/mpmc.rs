//! The two bounded MPMC channel peers, crossbeam-channel and flume: their
//! APIs match, so one macro adapts both (blocking `send`, polling
//! `try_recv`).

use super::channel::{Channel, Recv, Rx, Tx};
use crate::harness::Res;
use crate::payload::Payload;

/// Implements the suite's channel traits for a crate with crossbeam-style
/// `bounded`, `Sender::send` and `Receiver::try_recv`.
macro_rules! bounded_mpmc_peer {
    ($(#[$doc:meta])* $peer:ident, $krate:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $peer;

        impl<P: Payload> Tx<P> for $krate::Sender<P> {
            #[inline]
            fn send(&mut self, v: P) -> Res<()> {
                $krate::Sender::send(self, v).map_err(|_| concat!($name, ": receiver gone").to_string())
            }
        }

        impl<P: Payload> Rx<P> for $krate::Receiver<P> {
            #[inline]
            fn recv(&mut self) -> Recv<P> {
                match self.try_recv() {
                    Ok(v) => Recv::Item(v),
                    Err($krate::TryRecvError::Empty) => Recv::Empty,
                    Err($krate::TryRecvError::Disconnected) => Recv::Closed,
                }
            }
        }

        impl Channel for $peer {
            const BATCH: bool = false;
            type Tx<P: Payload> = $krate::Sender<P>;
            type Rx<P: Payload> = $krate::Receiver<P>;

            fn pair<P: Payload>(capacity: usize) -> ($krate::Sender<P>, $krate::Receiver<P>) {
                $krate::bounded(capacity)
            }

            fn clone_tx<P: Payload>(tx: &$krate::Sender<P>) -> Option<$krate::Sender<P>> {
                Some(tx.clone())
            }
        }
    };
}

bounded_mpmc_peer!(
    /// crossbeam-channel, bounded: MPMC, blocking send (spin, then park).
    Crossbeam,
    crossbeam_channel,
    "crossbeam-channel"
);

bounded_mpmc_peer!(
    /// flume, bounded: MPMC, blocking send.
    Flume,
    flume,
    "flume"
);
