package tracing_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/tracing"
)

// provider returns a tracer provider of service that exports every ended
// span to exp at once.
func provider(t *testing.T, exp sdktrace.SpanExporter, service string) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func service(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

// headerSeen records, per data route, whether every request to it carried
// a traceparent.
type headerSeen struct {
	mu      sync.Mutex
	with    map[string]int
	without map[string]int
}

func (h *headerSeen) wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		h.mu.Lock()
		if len(rc.Request.Header.Peek("traceparent")) > 0 {
			h.with[string(rc.Path())]++
		} else {
			h.without[string(rc.Path())]++
		}
		h.mu.Unlock()
		next(rc)
	}
}

// TestTransferTraceSpansBothServers makes one transfer with a traced Go
// client through a real business server and a real data server on
// loopback, each with a tracer provider of its own, and checks that every
// span is in one trace with the links client → business route → data
// calls → data routes → account operations, that every request to the
// data server carried a traceparent, and that no span carries the client
// token, the server credential or the Idempotency-Key.
func TestTransferTraceSpansBothServers(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	seen := &headerSeen{with: map[string]int{}, without: map[string]int{}}
	data := dataservertest.Start(t, dataservertest.Options{TracerProvider: provider(t, exp, "data"), Wrap: seen.wrap})
	biz := businesstest.Start(t, data, businesstest.Options{TracerProvider: provider(t, exp, "business")})

	const token = "ba0f"
	const key = "idem-key-4b1d-must-not-leak"
	c, err := client.New(biz.URL, data.URL+"/autentica", token, client.WithTracerProvider(provider(t, exp, "client")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transferencia(context.Background(), 2, 1, 300, client.Key(key)); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()

	byName := map[string][]tracetest.SpanStub{}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		byID[s.SpanContext.SpanID()] = s
		t.Logf("%-8s %-22s %s parent %s", service(s), s.Name, s.SpanContext.SpanID(), s.Parent.SpanID())
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans named %q, want 1", len(byName[name]), name)
		}
		return byName[name][0]
	}
	root := one("client transferencia")
	traceID := root.SpanContext.TraceID()
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q (%s) is in trace %s, not the transfer's %s", s.Name, service(s), s.SpanContext.TraceID(), traceID)
		}
	}
	if root.Parent.IsValid() {
		t.Errorf("the client's span has a parent %s", root.Parent.SpanID())
	}
	// parentOf checks that child's parent is parent, in the services given.
	parentOf := func(child, parent tracetest.SpanStub, childService, parentService string) {
		t.Helper()
		if service(child) != childService || service(parent) != parentService {
			t.Errorf("%q is %s's and %q %s's, want %s and %s", child.Name, service(child), parent.Name, service(parent), childService, parentService)
		}
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("%q's parent is %q, want %q", child.Name, byID[child.Parent.SpanID()].Name, parent.Name)
		}
	}
	route := one("business transferencia")
	parentOf(route, root, "business", "client")
	if route.SpanKind != trace.SpanKindServer || !route.Parent.IsRemote() {
		t.Errorf("the business route's span: kind %v, remote parent %v; want a server span with a remote parent", route.SpanKind, route.Parent.IsRemote())
	}
	// A keyed transfer looks its key up first (/idem), then locks both
	// accounts (/getLocks) and commits (/commit).
	for _, r := range []string{"/idem", "/getLocks", "/commit"} {
		call := one("call " + r)
		parentOf(call, route, "business", "business")
		parentOf(one("data "+r), call, "data", "business")
	}
	// The token is checked twice: by the client before its first operation,
	// and by the business server (whose cache is empty).
	auths := byName["data /autentica"]
	if len(auths) != 2 {
		t.Fatalf("%d data /autentica spans, want 2 (the client's and the business server's)", len(auths))
	}
	for _, a := range auths {
		p := byID[a.Parent.SpanID()]
		if p.Name != "client transferencia" && p.Name != "call /autentica" {
			t.Errorf("data /autentica's parent is %q", p.Name)
		}
	}
	parentOf(one("call /autentica"), route, "business", "business")

	locks := one("data /getLocks")
	commit := one("data /commit")
	for _, x := range []struct {
		name   string
		parent tracetest.SpanStub
		n      int
	}{{"account.lock", locks, 2}, {"account.pin", commit, 2}, {"store.commit", commit, 1}, {"account.commit", commit, 2}} {
		got := byName[x.name]
		if len(got) != x.n {
			t.Errorf("%d %q spans, want %d", len(got), x.name, x.n)
		}
		contas := map[int64]bool{}
		for _, s := range got {
			parentOf(s, x.parent, "data", "data")
			for _, kv := range s.Attributes {
				if kv.Key == tracing.KeyConta {
					contas[kv.Value.AsInt64()] = true
				}
			}
		}
		if x.n == 2 && (!contas[1] || !contas[2]) {
			t.Errorf("%q spans name accounts %v, want 1 and 2", x.name, contas)
		}
	}
	if !hasAttr(route, attribute.Bool("gobank.idempotent", true)) || !hasAttr(route, attribute.Int64("gobank.conta_orig", 2)) ||
		!hasAttr(route, semconv.HTTPResponseStatusCode(200)) {
		t.Errorf("the business route's span lacks its parameters or status: %v", route.Attributes)
	}

	for path, n := range seen.without {
		if path == "/status" {
			continue // dataservertest's check that the server serves
		}
		t.Errorf("%d requests to the data server's %s without a traceparent", n, path)
	}
	if seen.with["/idem"] != 1 || seen.with["/getLocks"] != 1 || seen.with["/commit"] != 1 || seen.with["/autentica"] != 2 {
		t.Errorf("requests with a traceparent: %v", seen.with)
	}
	noSecrets(t, spans, token, data.ServerToken, key)
}

func hasAttr(s tracetest.SpanStub, want attribute.KeyValue) bool {
	for _, kv := range s.Attributes {
		if kv == want {
			return true
		}
	}
	return false
}

// noSecrets fails when any span's name, attributes, events, links, status
// or resource contains one of secrets.
func noSecrets(t *testing.T, spans tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans to check")
	}
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description, s.SpanContext.TraceState().String()}
		kvs := append([]attribute.KeyValue(nil), s.Attributes...)
		kvs = append(kvs, s.Resource.Attributes()...)
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			kvs = append(kvs, e.Attributes...)
		}
		for _, l := range s.Links {
			kvs = append(kvs, l.Attributes...)
		}
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key), kv.Value.Emit())
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q carries a secret: %q", s.Name, text)
				}
			}
		}
	}
}

// TestNoTraceparentWhenOff checks that with tracing off nothing of it
// reaches the wire: no request to the data server carries a traceparent,
// even when the client's request did.
func TestNoTraceparentWhenOff(t *testing.T) {
	seen := &headerSeen{with: map[string]int{}, without: map[string]int{}}
	data := dataservertest.Start(t, dataservertest.Options{Wrap: seen.wrap})
	biz := businesstest.Start(t, data, businesstest.Options{})
	exp := tracetest.NewInMemoryExporter()
	c, err := client.New(biz.URL, data.URL+"/autentica", "ba0f", client.WithTracerProvider(provider(t, exp, "client")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transferencia(context.Background(), 1, 2, 5); err != nil {
		t.Fatal(err)
	}
	// The client's own /autentica carries the client's traceparent; the
	// business server's calls must not.
	if seen.with["/autentica"] != 1 || seen.with["/getLocks"]+seen.with["/commit"] != 0 {
		t.Errorf("requests with a traceparent: %v; want only the client's /autentica", seen.with)
	}
	if seen.without["/getLocks"] != 1 || seen.without["/commit"] != 1 {
		t.Errorf("requests without a traceparent: %v", seen.without)
	}
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans, want the client's only", n)
	}
}
