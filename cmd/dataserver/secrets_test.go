package main

// No secret in any output, whatever the request looks like: requests that
// fasthttp cannot parse carry a server credential, a client token and an
// Idempotency-Key, and neither server may write any of them to its
// stderr or its operation log.

import (
	"github.com/bank/gobank/cmd/internal/proctest"

	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// malformed are raw requests neither server can parse (or must refuse
// before routing), each over a connection of its own. {S}, {C} and {K}
// stand for the server credential, a client token and an Idempotency-Key;
// {P} for a route of the server under test.
var malformed = []struct{ name, raw string }{
	{"no Host on HTTP/1.1", "GET {P} HTTP/1.1\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"empty Host", "GET {P} HTTP/1.1\r\nHost:\r\ntoken: {C}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"negative Content-Length", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\nContent-Length: -5\r\n\r\n{C}"},
	{"repeated Content-Length", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {C}\r\nContent-Length: 3\r\nContent-Length: 4\r\nIdempotency-Key: {K}\r\n\r\nabcd"},
	{"Content-Length not a number", "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 1{S}\r\ntoken: {S}\r\n\r\n"},
	{"NUL in a header value", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\x00{C}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"NUL in a header name", "GET {P} HTTP/1.1\r\nHost: x\r\ntok\x00en: {S}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"header line without a colon", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken {S}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"space before the colon", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken : {C}\r\nIdempotency-Key : {K}\r\n\r\n"},
	{"obsolete line folding", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\n {C}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"bare CR in a header", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r{C}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"request line without a version", "GET {P}?t={S}\r\nHost: x\r\ntoken: {S}\r\n\r\n"},
	{"garbage request line", "\x16\x03\x01{S} {C} {K}\r\ntoken: {S}\r\n\r\n"},
	{"the secrets in the request line", "GET /{S}/{C} /{K} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"invalid Transfer-Encoding", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nTransfer-Encoding: gzip, {C}\r\nIdempotency-Key: {K}\r\n\r\n"},
	{"invalid chunk size", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nTransfer-Encoding: chunked\r\n\r\nzz{C}\r\n{K}\r\n0\r\n\r\n"},
	{"chunked and Content-Length", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {C}\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nIdempotency-Key: {K}\r\n\r\n1\r\n{S}\r\n0\r\n\r\n"},
	{"bad trailer", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nTransfer-Encoding: chunked\r\nTrailer: Idempotency-Key\r\n\r\n0\r\nIdempotency-Key {K}\r\ntoken: {C}\r\n\r\n"},
	{"header block over 8 KiB", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\nX-Pad: " + strings.Repeat("{C}", 700) + "\r\n\r\n"},
	{"body too large", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\nContent-Length: 99999999\r\n\r\n{C}"},
	{"body shorter than its length", "POST {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\nContent-Length: 100\r\n\r\n{C}"},
	{"headers cut short", "GET {P} HTTP/1.1\r\nHost: x\r\ntoken: {S}\r\nIdempotency-Key: {K}\r\n"},
	{"control byte in the URI", "GET {P}\x01{S} HTTP/1.1\r\nHost: x\r\ntoken: {C}\r\n\r\n"},
}

// TestNoSecretInOutputOnMalformedRequests sends every malformed request,
// carrying the server credential, a client token and an Idempotency-Key,
// to a data server and a business server (real processes), then one
// well-formed request with the same secrets to each, and checks that
// neither secret appears in either process's output (stderr and stdout)
// or operation log — while fasthttp's warnings still reach the log, with
// the caller's address and no request content.
func TestNoSecretInOutputOnMalformedRequests(t *testing.T) {
	client := "cli" + randomHex(12)
	key := "key" + randomHex(12)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# test\n"+client+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, "", "--tokens", tokens)
	c.startData()
	biz := c.startBusiness("biz", nil)
	secrets := map[string]string{"the server credential": c.token, "the client token": client, "the Idempotency-Key": key}
	expand := strings.NewReplacer("{S}", c.token, "{C}", client, "{K}", key)

	for _, srv := range []struct {
		name, log, route string
		proc             *proctest.Proc
	}{
		{"data server", filepath.Join(c.dataWD, "data_server.log"), "/getSaldo?conta=1&id_negoc=x", c.data},
		{"business server", filepath.Join(c.root, "biz-wd", "business_server.log"), "/deposito/1/10", biz},
	} {
		t.Run(srv.name, func(t *testing.T) {
			addr := strings.TrimPrefix(srv.proc.URL, "http://")
			var ports []string // of the requests fasthttp logs
			for _, m := range malformed {
				raw := expand.Replace(strings.ReplaceAll(m.raw, "{P}", srv.route))
				port, status := rawRequest(t, addr, raw)
				if status != "" && !strings.HasPrefix(status, "HTTP/1.1 4") {
					t.Errorf("%s: answered %q, want a 4xx", m.name, status)
				}
				t.Logf("%s: %q", m.name, status)
				if m.name == "no Host on HTTP/1.1" {
					ports = append(ports, port)
				}
			}
			// A well-formed request with the same secrets.
			ok := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: x\r\ntoken: %s\r\nIdempotency-Key: %s\r\nConnection: close\r\n\r\n",
				srv.route, client, key)
			if srv.name == "data server" {
				ok = strings.Replace(ok, client, c.token, 1)
			}
			if _, status := rawRequest(t, addr, ok); !strings.HasPrefix(status, "HTTP/1.1 200") {
				t.Errorf("a well-formed request: %q, want 200", status)
			}
			// The last logged request's warning is in the output: every
			// earlier one is, too (each is written before its connection
			// closes).
			last, _ := rawRequest(t, addr, expand.Replace(strings.ReplaceAll(malformed[0].raw, "{P}", srv.route)))
			ports = append(ports, last)
			proctest.WaitFor(t, 5*time.Second, "fasthttp's warning of the last malformed request", func() bool {
				return strings.Contains(srv.proc.Output(), logged(last))
			})
			out := srv.proc.Output()
			for _, p := range ports {
				line := lineWith(out, logged(p))
				if !strings.Contains(line, "malformed request") {
					t.Errorf("the warning of the request from port %s does not give its class and address: %q", p, line)
				}
			}
			// The operation log has the well-formed request (flushed
			// within 100 ms).
			var oplog []byte
			proctest.WaitFor(t, 5*time.Second, "the operation log's line", func() bool {
				oplog, _ = os.ReadFile(srv.log)
				return len(oplog) > 0
			})
			for what, s := range secrets {
				for where, text := range map[string]string{"output": out, "operation log": string(oplog)} {
					if strings.Contains(text, s) {
						t.Errorf("%s is in the %s's %s:\n%s", what, srv.name, where, lineWith(text, s))
					}
				}
			}
		})
	}
	// Neither server stopped, and the data server's output has nothing
	// of the business server's requests either.
	for _, p := range []*proctest.Proc{c.data, biz} {
		select {
		case <-p.Done:
			t.Fatalf("%s exited: %v", p.Name, p.Cmd.ProcessState)
		default:
		}
	}
	for what, s := range secrets {
		if strings.Contains(c.data.Output(), s) {
			t.Errorf("%s is in the data server's output at the end", what)
		}
	}
}

// rawRequest writes raw to a new connection to addr, closes the writing
// side, and reads the answer to its end. It returns the connection's local
// port and the answer's status line ("" when the server answered nothing).
func rawRequest(t *testing.T, addr, raw string) (port, status string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, port, _ = net.SplitHostPort(conn.LocalAddr().String())
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	status, _ = br.ReadString('\n')
	if _, err := io.Copy(io.Discard, br); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the answer: %v", err)
	}
	return port, strings.TrimRight(status, "\r\n")
}

// logged is how a warning names the connection from a local port (slog's
// text format quotes the message).
func logged(port string) string { return `<->\"127.0.0.1:` + port + `\"` }

// lineWith returns the first line of s that contains sub, or "".
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
