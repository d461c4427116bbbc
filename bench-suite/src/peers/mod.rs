//! The systems measured: pinbus and its peers, one module each.

use clap::ValueEnum;
use serde::Serialize;

pub mod channel;
pub mod disruptor;
pub mod mpmc;
pub mod pinbus;
pub mod request;
pub mod rtrb;
pub mod tokio_async;
pub mod tokio_broadcast;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// pinbus (always measured).
    Pinbus,
    /// The `disruptor` crate 4.x: handlers on the ring, BusySpin, pinned.
    Disruptor,
    /// crossbeam-channel, bounded.
    #[value(alias = "crossbeam-channel")]
    Crossbeam,
    /// flume, bounded.
    Flume,
    /// tokio::sync::broadcast (lossy: counts events lost to lag).
    #[value(alias = "tokio-broadcast", alias = "broadcast")]
    Tokio,
    /// tokio::sync::mpsc, bounded, from tasks (with a oneshot reply in the
    /// round trip): the async peer of S9, measured only there.
    #[value(alias = "mpsc")]
    TokioMpsc,
    /// rtrb, a raw SPSC ring: the practical limit.
    Rtrb,
}

impl Peer {
    /// Every peer, pinbus first.
    pub const ALL: [Peer; 7] = [
        Peer::Pinbus,
        Peer::Disruptor,
        Peer::Crossbeam,
        Peer::Flume,
        Peer::Tokio,
        Peer::TokioMpsc,
        Peer::Rtrb,
    ];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Pinbus => "pinbus",
            Peer::Disruptor => "disruptor",
            Peer::Crossbeam => "crossbeam-channel",
            Peer::Flume => "flume",
            Peer::Tokio => "tokio-broadcast",
            Peer::TokioMpsc => "tokio-mpsc",
            Peer::Rtrb => "rtrb",
        }
    }
}
