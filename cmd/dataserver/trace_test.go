package main

// Tracing with real processes: the "done when" — one transfer with
// OTEL_TRACES_EXPORTER=console prints spans of both servers that share
// one trace id.

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/cmd/internal/proctest"
)

// consoleSpans parses the spans p printed.
func consoleSpans(t *testing.T, p *proctest.Proc) []proctest.Span {
	t.Helper()
	spans, err := proctest.ConsoleSpans(p.Output())
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return spans
}

// TestConsoleTracesShareOneTrace runs a data server and a business server
// with OTEL_TRACES_EXPORTER=console, makes one transfer carrying a W3C
// traceparent, stops both with SIGTERM (which flushes their spans) and
// checks that each printed its spans of the transfer in the caller's trace,
// the data server's route spans being children of the business server's
// calls, and that neither printed the server credential.
func TestConsoleTracesShareOneTrace(t *testing.T) {
	c := newCluster(t, "")
	c.env = append(c.env, "OTEL_TRACES_EXPORTER=console")
	data := c.startData()
	biz := c.startBusiness("biz", nil)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodGet, biz.URL+"/transferencia/1/2/100", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("token", clientToken)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("transfer: HTTP %d", resp.StatusCode)
	}
	c.client.CloseIdleConnections()
	for _, p := range []*proctest.Proc{biz, data} {
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if status, ok := p.Wait(15 * time.Second); !ok || status != 0 {
			t.Fatalf("%s: exit status %d (exited: %v) after SIGTERM\n%s", p.Name, status, ok, p.Output())
		}
	}

	bizSpans, dataSpans := consoleSpans(t, biz), consoleSpans(t, data)
	calls := map[string]string{} // span id of each business "call /route" -> route
	names := map[string]map[string]bool{}
	for _, x := range []struct {
		p       *proctest.Proc
		spans   []proctest.Span
		service string
	}{{biz, bizSpans, "gobank-business"}, {data, dataSpans, "gobank-dataserver"}} {
		names[x.service] = map[string]bool{}
		for _, s := range x.spans {
			if s.SpanContext.TraceID != traceID {
				t.Errorf("%s printed span %q in trace %s, not the transfer's %s", x.p.Name, s.Name, s.SpanContext.TraceID, traceID)
			}
			if s.Service() != x.service {
				t.Errorf("%s printed span %q of service %q, want %q", x.p.Name, s.Name, s.Service(), x.service)
			}
			names[x.service][s.Name] = true
			if route, ok := strings.CutPrefix(s.Name, "call "); ok {
				calls[s.SpanContext.SpanID] = route
			}
		}
		if strings.Contains(x.p.Output(), c.token) {
			t.Errorf("%s printed the server credential", x.p.Name)
		}
	}
	for service, want := range map[string][]string{
		"gobank-business":   {"business transferencia", "call /autentica", "call /getLocks", "call /commit"},
		"gobank-dataserver": {"data /autentica", "data /getLocks", "account.lock", "data /commit", "account.pin", "store.commit", "account.commit"},
	} {
		for _, name := range want {
			if !names[service][name] {
				t.Errorf("%s printed no %q span; it printed %v", service, name, names[service])
			}
		}
	}
	for _, s := range dataSpans {
		if route, ok := strings.CutPrefix(s.Name, "data "); ok && calls[s.Parent.SpanID] != route {
			t.Errorf("the data server's %q span is the child of %q, want the business server's call of %s",
				s.Name, calls[s.Parent.SpanID], route)
		}
	}
	t.Logf("%d spans from the business server and %d from the data server in trace %s", len(bizSpans), len(dataSpans), traceID)
}
