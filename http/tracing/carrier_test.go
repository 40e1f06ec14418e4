package tracing

import (
	"context"
	"slices"
	"testing"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"
)

func TestCarrier(t *testing.T) {
	var req fasthttp.RequestHeader
	var resp fasthttp.ResponseHeader
	for name, c := range map[string]Carrier{"request": RequestCarrier(&req), "response": ResponseCarrier(&resp)} {
		c.Set("traceparent", "a")
		c.Set("traceparent", "b") // replaces
		c.Set("tracestate", "k=v")
		if got := c.Get("traceparent"); got != "b" {
			t.Errorf("%s: Get(traceparent) = %q, want b", name, got)
		}
		if got := c.Get("missing"); got != "" {
			t.Errorf("%s: Get(missing) = %q", name, got)
		}
		keys := c.Keys()
		if !slices.ContainsFunc(keys, func(k string) bool { return k == "Traceparent" || k == "traceparent" }) ||
			!slices.ContainsFunc(keys, func(k string) bool { return k == "Tracestate" || k == "tracestate" }) {
			t.Errorf("%s: Keys() = %v", name, keys)
		}
	}
}

// TestPropagation sends a span context through a request header and back.
func TestPropagation(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	var h fasthttp.RequestHeader
	Propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), RequestCarrier(&h))
	if got, want := string(h.Peek("traceparent")), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Fatalf("traceparent = %q, want %q", got, want)
	}
	got := trace.SpanContextFromContext(Propagator.Extract(context.Background(), RequestCarrier(&h)))
	if !got.IsRemote() || got.TraceID() != tid || got.SpanID() != sid || !got.IsSampled() {
		t.Errorf("extracted %+v, want %+v from a remote parent", got, sc)
	}
	// Baggage is not propagated.
	h.Set("baggage", "user=secret")
	var out fasthttp.RequestHeader
	Propagator.Inject(Propagator.Extract(context.Background(), RequestCarrier(&h)), RequestCarrier(&out))
	if b := out.Peek("baggage"); len(b) != 0 {
		t.Errorf("baggage propagated: %q", b)
	}
}
