//! The connection's state, kept current from the client's events or, for a
//! caller's client, by polling its statistics.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::stats::{add, Counters};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;

/// The connection's state as the client reports it, for exports to replay
/// after a reconnect.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnState {
    /// Connected now.
    pub(crate) up: bool,
    /// Incremented on every (re)connect.
    pub(crate) epoch: u64,
    /// When the connection last dropped.
    pub(crate) down_at: Option<Instant>,
}

pub(crate) fn on_event(
    conn: &watch::Sender<ConnState>,
    counters: &Counters,
    errors: &broadcast::Sender<String>,
    event: async_nats::Event,
) {
    match event {
        async_nats::Event::Connected => conn.send_modify(|s| {
            if s.epoch > 0 {
                add(&counters.reconnects, 1);
            }
            s.up = true;
            s.epoch += 1;
        }),
        async_nats::Event::Disconnected => conn.send_modify(|s| {
            s.up = false;
            s.down_at = Some(Instant::now());
        }),
        async_nats::Event::ServerError(e) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(error = %e, "pinbus nats: the server reported an error");
            let _ = errors.send(match e {
                async_nats::ServerError::Other(text) => text,
                other => other.to_string(),
            });
        }
        _ => {}
    }
}

/// The state of a caller's client as the bridge tracks it.
pub(crate) fn client_state(client: &async_nats::Client) -> (u64, bool) {
    let connects = client.statistics().connects.load(Ordering::Relaxed);
    let up = client.connection_state() == async_nats::connection::State::Connected;
    (connects, up)
}

/// Reconnects of a caller's client, seen by polling its statistics.
pub(crate) async fn watch_client(
    client: async_nats::Client,
    conn: Arc<watch::Sender<ConnState>>,
    counters: Arc<Counters>,
) {
    let (mut connects, mut up) = client_state(&client);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (now_connects, now_up) = client_state(&client);
        if now_connects == connects && now_up == up {
            continue;
        }
        let reconnected = now_connects > connects;
        if reconnected && connects > 0 {
            add(&counters.reconnects, now_connects - connects);
        }
        conn.send_modify(|s| {
            // A drop shorter than the poll shows only as a new connect.
            if up && (!now_up || reconnected) {
                s.down_at = Some(Instant::now());
            }
            s.epoch += now_connects.saturating_sub(connects);
            s.up = now_up;
        });
        connects = now_connects;
        up = now_up;
    }
}
