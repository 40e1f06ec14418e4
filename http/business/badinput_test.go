package business_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

func TestGarbagePaths(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	paths := []string{"/", "/deposito", "/deposito/1", "/deposito/1/2/3", "/saldo/1/", "/SALDO/1", "/Deposito/1/5",
		"/transferencia/1/2", "/transferencia/1/2/3/4", "/deposito/1/5/", "/saldo/1/extra", "/status/x",
		"/favicon.ico", "/..%2f..%2fetc/passwd", "/deposito/1/5;x", "//saldo/1", "/saldo//1",
		"/" + strings.Repeat("a", 4000)}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := do(t, method, bs.URL+p, token)
			if r.status != 404 && r.status != 400 {
				t.Errorf("%s %s: status %d (%s), want 404", method, p, r.status, r.body)
				continue
			}
			if r.ans.ErrorCode == nil {
				t.Errorf("%s %s: no error_code in %q", method, p, r.body)
			}
		}
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := do(t, method, bs.URL+"/deposito/1/5", token)
		wantError(t, r, 405, int64(teller.BadRequest))
	}
	checkBank(t, data, uniform(10, 1000))
}

// rawResult sends raw bytes on a fresh connection and reads one response.
func raw(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write while reading: the server may answer before reading it all.
	go func() { _, _ = io.WriteString(c, request) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOversizedAndMalformed(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{})
	big := strings.Repeat("x", 64<<10)
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"64 KiB header", "GET /deposito/1/5 HTTP/1.1\r\nHost: a\r\ntoken: ba0f\r\nX-Big: " + big + "\r\n\r\n", 431},
		{"64 KiB query string", "GET /deposito/1/5?q=" + big + " HTTP/1.1\r\nHost: a\r\ntoken: ba0f\r\n\r\n", 431},
		{"64 KiB token", "GET /deposito/1/5 HTTP/1.1\r\nHost: a\r\ntoken: " + big + "\r\n\r\n", 431},
		{"many headers", "GET /deposito/1/5 HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 3000) + "token: ba0f\r\n\r\n", 431},
		{"body over MaxBody", "POST /deposito/1/5 HTTP/1.1\r\nHost: a\r\ntoken: ba0f\r\nContent-Length: " + strconv.Itoa(business.MaxBody+1) + "\r\n\r\n" +
			strings.Repeat("y", business.MaxBody+1), 413},
		{"garbage request line", "GARBAGE\r\n\r\n", 400},
		{"bad content length", "POST /deposito/1/5 HTTP/1.1\r\nHost: a\r\ntoken: ba0f\r\nContent-Length: -5\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := raw(t, bs.Addr, tt.request)
			if status != tt.status {
				t.Errorf("status %d, want %d (%s)", status, tt.status, body)
			}
			var e struct {
				Code *int `json:"error_code"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == nil {
				t.Errorf("answer %q is not a JSON error", body)
			}
		})
	}
	// A query string is ignored, not an error.
	if r := get(t, bs.URL+"/saldo/1?conta=2&valor=-1"); r.status != 200 {
		t.Errorf("saldo with a query string: %d %s", r.status, r.body)
	}
	checkBank(t, data, uniform(10, 1000))
	if r := do(t, http.MethodGet, bs.URL+"/status", ""); r.status != 200 {
		t.Errorf("server unwell after bad input: %d", r.status)
	}
}

// TestRepeatedToken sends the token header twice, with every pair of
// values and in either spelling, with and without an Idempotency-Key:
// each request is refused 400 BAD_REQUEST, as a repeated Idempotency-Key
// is, whichever value comes first; nothing is applied, and nothing of it
// reaches the data server (no /autentica with either value, no call at
// all).
func TestRepeatedToken(t *testing.T) {
	var reached, repeated atomic.Int64
	data := dataservertest.Start(t, dataservertest.Options{Wrap: func(next fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			reached.Add(1)
			if len(ctx.Request.Header.PeekAll(wire.HeaderToken)) > 1 {
				repeated.Add(1)
			}
			next(ctx)
		}
	}})
	bs := startBusiness(t, data, businesstest.Options{AuthCacheTTL: -1})
	pairs := []struct{ name, lines string }{
		{"client, client", "token: " + token + "\r\ntoken: " + token + "\r\n"},
		{"client, another client", "token: " + token + "\r\ntoken: 4c0e\r\n"},
		{"client, unknown", "token: " + token + "\r\ntoken: nope\r\n"},
		{"unknown, client", "token: nope\r\ntoken: " + token + "\r\n"},
		{"client, the server credential", "token: " + token + "\r\ntoken: " + data.ServerToken + "\r\n"},
		{"client, empty", "token: " + token + "\r\ntoken: \r\n"},
		{"token and Token", "token: " + token + "\r\nToken: " + token + "\r\n"},
	}
	before := reached.Load()
	for _, pair := range pairs {
		for _, key := range []string{"", "Idempotency-Key: k-" + strings.ReplaceAll(pair.name, " ", "") + "\r\n"} {
			for _, path := range []string{"/deposito/1/5", "/saque/1/5", "/saldo/1", "/transferencia/1/2/5"} {
				status, body := raw(t, bs.Addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+pair.lines+key+"Connection: close\r\n\r\n")
				var a answer
				if err := json.Unmarshal([]byte(body), &a); err != nil || status != 400 ||
					a.ErrorCode == nil || *a.ErrorCode != int64(teller.BadRequest) || !strings.Contains(a.Error, "token") {
					t.Errorf("%s with the token twice (%s, key %q): %d %s, want 400 BAD_REQUEST naming the token",
						path, pair.name, strings.TrimSpace(key), status, body)
				}
			}
		}
	}
	if n := reached.Load() - before; n != 0 {
		t.Errorf("requests with the token twice made %d calls to the data server (%d with the token twice), want none", n, repeated.Load())
	}
	checkBank(t, data, uniform(10, 1000))
	// One token still works.
	if status, body := raw(t, bs.Addr, "GET /deposito/1/5 HTTP/1.1\r\nHost: x\r\ntoken: "+token+"\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Errorf("one token: %d %s, want 200", status, body)
	}
}
