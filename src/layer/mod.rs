//! Handler middleware: layers composed around a handler at subscribe time.
//!
//! A [`Layer`] sees each event and its metadata before the rest of the chain
//! and decides: call the rest ([`Handle::handle`] on `next`), skip the event
//! (`Ok(Disposition::Skipped)`, counted in
//! [`SubscriptionStats::skipped`](crate::SubscriptionStats::skipped)), or fail
//! it (`Err(reason)`, which feeds the subscription's retries and dead
//! letters like a failing handler).
//!
//! Layers compose with static dispatch: [`SubscribeOptions::layer`] nests
//! their types, and the whole chain — layers and handler — becomes one
//! concrete type behind the single indirect call a subscription always
//! costs. No allocation or extra indirect call per event; a subscription
//! without layers compiles to the handler alone.
//!
//! # Order
//!
//! The first layer added is the outermost: with
//! `SubscribeOptions::new().layer(A).layer(B)`, an event passes `A`, then
//! `B`, then the handler; `A` sees what `B` and the handler returned.
//!
//! # Examples
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pinbus::layer::{Filter, RateLimit};
//! use pinbus::{Engine, SubscribeOptions};
//!
//! let engine = Engine::builder().workers(1).build()?;
//! let prices = engine.topic::<u64>("prices")?;
//! let sub = prices.subscribe_with(
//!     |ev| println!("price {}", **ev),
//!     SubscribeOptions::new()
//!         .layer(Filter::new(|ev: &pinbus::Event<u64>| **ev > 0))
//!         .layer(RateLimit::per_second(10_000)),
//! )?;
//! prices.publish(0)?; // filtered out: counted as skipped
//! prices.publish(5)?;
//! engine.shutdown(); // drains: the counts are final
//! assert_eq!((sub.stats().handled, sub.stats().skipped), (1, 1));
//! # Ok(()) }
//! ```
//!
//! [`SubscribeOptions::layer`]: crate::SubscribeOptions::layer

pub(crate) mod gcra;
mod middleware;
pub(crate) mod outcome;

pub use self::middleware::*;
