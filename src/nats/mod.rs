//! Topics across processes and machines: a bridge to NATS JetStream
//! (feature `nats`).
//!
//! A [`Bridge`] connects an [`Engine`](crate::Engine) to a NATS server (or
//! cluster). [`Bridge::export`] sends every event of a local topic to a NATS
//! subject; [`Bridge::import`] publishes the messages of a JetStream durable
//! consumer into a local topic. Any NATS client in any language can produce
//! or consume the same subjects: the default [`Json`] codec writes plain
//! JSON bodies.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pinbus::Engine;
//! use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, cents: u64 }
//!
//! // Process A
//! let a = Engine::builder().build()?;
//! let bridge_a = Bridge::connect("nats://127.0.0.1:4222", &a,
//!     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
//! let created = a.topic::<Order>("orders.created")?;
//! bridge_a.export(&created, "orders.created")?;
//! created.publish(Order { id: 1, cents: 990 })?;
//!
//! // Process B (another machine)
//! let b = Engine::builder().build()?;
//! let bridge_b = Bridge::connect("nats://127.0.0.1:4222", &b,
//!     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
//! let orders = b.topic::<Order>("orders.created")?;
//! orders.subscribe(|ev| println!("billing order {}", ev.id))?;
//! bridge_b.import::<Order, _>("orders.>", &orders, ImportOptions::durable("billing"))?;
//! # Ok(()) }
//! ```
//!
//! # Topics and subjects
//!
//! pinbus topic names use the NATS token rules (dot-separated, no
//! whitespace, `*` or `>`), so the natural mapping is the identity: topic
//! `orders.created` exports to subject `orders.created`. The subject is
//! given explicitly, so a prefix per service or region
//! (`eu.orders.created`) is a choice, not a rule. Imports take NATS
//! filters: `*` matches one token, a final `>` one or more. A subject that
//! a stream on the server captures is stored there; otherwise the bridge
//! adds it to its stream (`PINBUS`), unless [`BridgeOptions::stream`] fixed
//! that stream's subjects ([`BridgeError::NotInStream`] then).
//!
//! # Secured clusters
//!
//! [`BridgeOptions`] takes credentials (`user_and_password`, `token`,
//! `nkey`, `credentials_file`) and TLS settings (`add_root_certificates`,
//! `add_client_certificate`, `require_tls`), named as async-nats names
//! them; [`Bridge::with_client`] takes a client the service configured
//! itself. Wrong credentials, untrusted certificates and missing publish
//! permissions are typed errors ([`BridgeError::Auth`], [`BridgeError::Tls`],
//! [`BridgeError::Permission`]) that say what to change.
//!
//! # Draining, stats, rejected messages
//!
//! [`Bridge::drain`] waits until every event the exported topics accepted
//! is stored by JetStream or dead-lettered. [`Bridge::link_stats`] has the
//! counters per export and import. Undecodable imported messages are kept
//! as [`RejectedMessage`]s ([`Import::rejected`]).
//!
//! # Delivery: at least once, deduped on both sides
//!
//! - **Export.** A subscription on the local topic encodes each event and
//!   puts it in a bounded queue; a tokio task publishes it with
//!   `Nats-Msg-Id: <instance>-<topic>-<seq>` and keeps up to
//!   `max_in_flight` acks outstanding. An ack that fails or times out makes
//!   the task re-send its whole un-acked window in order, same ids: JetStream
//!   stores each id once within its duplicate window
//!   ([`BridgeOptions::duplicate_window`]). A full queue fails the event in
//!   the local subscription, whose retry policy retries it and finally
//!   dead-letters it on the topic: no unbounded buffer, nothing dropped
//!   uncounted ([`BridgeStats`]).
//! - **Import.** A durable pull consumer with explicit acks. Each new
//!   message is published into the local topic with
//!   [`publish_tracked`](crate::Topic::publish_tracked) and acked when the
//!   receipt completes: every subscription live at publish time has handled
//!   it. Undecodable messages are terminated (`+TERM`) and counted.
//!
//! # Dedupe
//!
//! A NATS 2.9 server killed with `-9` and restarted re-delivers tens to
//! hundreds of messages that were already acked (its consumer state on disk
//! lags the acks), and can lose the last milliseconds of stream writes it
//! had acknowledged. The bridge covers both:
//!
//! - each import keeps a window of the last `dedupe_window` message ids
//!   (default 65,536; a 128-bit hash each, about 64 bytes of memory per
//!   entry). A delivery whose id is in the window is acked and not
//!   published again; one whose first delivery is still being handled is
//!   dropped (the first delivery's ack settles it). Messages without a
//!   `Nats-Msg-Id` are keyed by stream sequence instead, with everything at
//!   or below the oldest evicted sequence counted as seen.
//!   `max_ack_pending` is at most half the window, so everything the
//!   server may re-deliver is inside it.
//! - each export, after a reconnect, re-sends the publishes acknowledged in
//!   the last [`replay_window`](ExportOptions::replay_window) before the
//!   connection dropped; the server drops the copies it kept and stores the
//!   ones it lost.
//!
//! The window lives in memory: a *restarted importing process* relies on
//! JetStream's acks alone, so messages it handled but had not acked yet
//! are handled again (at least once).
//!
//! # Tracing
//!
//! Exports write the event's W3C trace context as a `traceparent` header;
//! imports publish under that context, so the local event keeps the remote
//! trace id and has the remote event's span as its parent.
//!
//! # Request/reply
//!
//! [`Bridge::serve`] answers the core NATS requests on a subject with a
//! local [`Service`](crate::Service) (JSON by default, error replies with
//! the `Nats-Service-Error` and `Nats-Service-Error-Code` headers), so any
//! NATS client can call it; [`Bridge::remote`] makes a local `Service`
//! stand for one that another process (in any language) serves. See
//! [`ServiceOptions`] and `docs/nats.md`.
//!
//! # Running across machines
//!
//! See `docs/nats.md`: a three-node NATS cluster with JetStream, one URL
//! list per process, stream replicas, and the ack settings to tune.

// The modules with `impl Bridge` blocks, in the order rustdoc lists their
// methods (the blank lines keep rustfmt from sorting them).
mod client;
mod export_setup;
mod import_setup;
mod report;
mod service_setup;

mod drain;

mod bridge;

mod codec;
mod conn;
mod dedupe;
mod error;
mod export;
mod handles;
mod headers;
mod import;
mod link_options;
mod options;
mod permission;
mod placement;
mod probe;
mod rejected;
mod remote;
mod serve;
mod service_link;
mod service_options;
mod stats;
mod stream;
mod subject;

pub use bridge::Bridge;
pub use codec::{Binary, Codec, Json};
pub use error::{BridgeError, CodecError};
pub use handles::{Export, Import};
pub use link_options::{ExportOptions, ImportOptions};
pub use options::{BridgeOptions, DiscardPolicy, Storage};
pub use rejected::RejectedMessage;
pub use service_link::ServiceLink;
pub use service_options::ServiceOptions;
pub use stats::{BridgeStats, LinkKind, LinkStats};
