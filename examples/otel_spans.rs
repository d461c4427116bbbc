//! Exporting dispatch spans to OpenTelemetry with `tracing-opentelemetry`.
//!
//! An order handler publishes a billing event; pinbus makes the billing event
//! join the order's trace (`Event::trace_id`, with the order as its parent
//! span). A small layer (`OtelSpan`) opens a `tracing` span per dispatch and
//! hands OpenTelemetry the event's own trace id and parent span id, so the
//! exported spans of one order share one OpenTelemetry trace — whatever
//! exporter is installed (stdout here; OTLP to Jaeger, Zipkin or Tempo in
//! production).
//!
//! `pinbus::layer::Spans` is the zero-setup alternative: it opens the same
//! span with the ids as fields, for any `tracing` collector.
//!
//! Run: `cargo run --example otel_spans`

use std::error::Error;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_sdk::trace::SdkTracerProvider;
use pinbus::layer::{Handle, Layer, Outcome};
use pinbus::{Engine, Event, SubscribeOptions};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

/// Opens an OpenTelemetry-parented span around each dispatch.
struct OtelSpan(&'static str);

impl<T> Layer<T> for OtelSpan {
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome {
        let span = tracing::info_span!(
            "pinbus.dispatch",
            otel.name = self.0,
            topic = event.topic(),
            seq = event.seq(),
            attempt = event.attempt(),
        );
        // The span's parent is the span that caused this event (or, for a
        // root event, a span standing for the publish itself), in the
        // event's trace: OpenTelemetry then files it under that trace id.
        let parent = SpanContext::new(
            TraceId::from_bytes(event.trace_id().as_u128().to_be_bytes()),
            SpanId::from_bytes(
                event
                    .parent_span_id()
                    .unwrap_or(event.span_id())
                    .to_be_bytes(),
            ),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
        let _entered = span.enter();
        next.handle(event)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("pinbus-example")))
        .init();

    let engine = Engine::builder().workers(1).build()?;
    let orders = engine.topic::<u64>("orders.created")?;
    let billing = engine.topic::<u64>("billing.requested")?;

    let to_billing = billing.clone();
    orders.subscribe_with(
        move |ev: &Event<u64>| {
            println!("order {} in trace {}", **ev, ev.trace_id());
            // Joins the order's trace automatically.
            to_billing.publish(**ev * 100)
        },
        SubscribeOptions::new().layer(OtelSpan("handle order")),
    )?;
    billing.subscribe_with(
        |ev: &Event<u64>| {
            println!(
                "bill of {} cents in trace {} (parent span {:016x})",
                **ev,
                ev.trace_id(),
                ev.parent_span_id().unwrap_or(0)
            );
        },
        SubscribeOptions::new().layer(OtelSpan("bill order")),
    )?;

    for order in 1..=3 {
        orders.publish(order)?;
    }
    engine.shutdown();
    // Flushes the exporter: the spans print below, two per order, each
    // pair under the trace id printed above.
    provider.shutdown()?;
    Ok(())
}
