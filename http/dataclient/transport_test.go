package dataclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/dataclient"
)

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestTransport: every transport failure the data client and the load
// generator tell apart, its label and its reason for end users.
func TestTransport(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tt := range []struct {
		name   string
		err    error
		kind   dataclient.TransportKind
		label  string
		reason string
	}{
		{"no free connection", fmt.Errorf("x: %w", fasthttp.ErrNoFreeConns), dataclient.TransportNoFreeConn, "no_free_conn", "too many calls waiting"},
		{"dial timeout", fasthttp.ErrDialTimeout, dataclient.TransportDialTimeout, "dial_error", "did not answer in time"},
		{"refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), dataclient.TransportRefused, "dial_error", "refused the connection"},
		{"dial timed out", dial(timeoutErr{}), dataclient.TransportDialTimeout, "dial_error", "did not answer in time"},
		{"dial failed", dial(errors.New("no route to host")), dataclient.TransportDial, "dial_error", "could not talk"},
		{"timeout", fasthttp.ErrTimeout, dataclient.TransportTimeout, "timeout", "did not answer in time"},
		{"deadline", os.ErrDeadlineExceeded, dataclient.TransportTimeout, "timeout", "did not answer in time"},
		{"context deadline", context.DeadlineExceeded, dataclient.TransportTimeout, "timeout", "did not answer in time"},
		{"read timed out", &net.OpError{Op: "read", Err: timeoutErr{}}, dataclient.TransportTimeout, "timeout", "did not answer in time"},
		{"connection broke", io.ErrUnexpectedEOF, dataclient.TransportConn, "conn_error", "could not talk"},
		{"connection closed", fasthttp.ErrConnectionClosed, dataclient.TransportConn, "conn_error", "could not talk"},
	} {
		k := dataclient.Transport(tt.err)
		if k != tt.kind || k.String() != tt.label || !strings.Contains(k.Reason(), tt.reason) {
			t.Errorf("%s: Transport = %d %q %q, want %d %q %q", tt.name, k, k, k.Reason(), tt.kind, tt.label, tt.reason)
		}
		if want := tt.label == "dial_error"; k.Dial() != want {
			t.Errorf("%s: Dial() = %v, want %v", tt.name, k.Dial(), want)
		}
	}
}

// TestParseURL: the URLs the bank's clients take, and those they refuse.
func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		raw, addr, prefix string
		tls               bool
	}{
		{"http://127.0.0.1:5000", "127.0.0.1:5000", "http://127.0.0.1:5000", false},
		{"127.0.0.1:5000", "127.0.0.1:5000", "http://127.0.0.1:5000", false},
		{"http://localhost:5000/", "localhost:5000", "http://localhost:5000", false},
		{"http://h:5000/bank/", "h:5000", "http://h:5000/bank", false},
		{"https://bank.example", "bank.example:443", "https://bank.example", true},
		{"http://bank.example/a%20b", "bank.example:80", "http://bank.example/a%20b", false},
		{"http://[::1]", "[::1]:80", "http://[::1]", false},
	} {
		addr, tls, prefix, err := dataclient.ParseURL(tt.raw)
		if err != nil || addr != tt.addr || tls != tt.tls || prefix != tt.prefix {
			t.Errorf("ParseURL(%q) = %q %v %q %v, want %q %v %q", tt.raw, addr, tls, prefix, err, tt.addr, tt.tls, tt.prefix)
		}
	}
	for _, raw := range []string{"ftp://x", "http://", "http://h:1/?a=b", "http://h:1/#f", "http://u:p@h:1", "http://h:1:2:3%"} {
		if _, _, _, err := dataclient.ParseURL(raw); err == nil {
			t.Errorf("ParseURL(%q) accepted", raw)
		}
	}
}
