package dataclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"
)

// ParseURL reads a server's URL as the bank's clients take it:
// "http://host:port", "https://host:port" or "host:port" (http), with an
// optional path prefix. It returns the address to dial (host:port, the
// scheme's port when none is given), whether to use TLS, and the prefix of
// every request's URI: scheme://host[:port][/path], without a trailing
// slash. Queries, fragments and user information are refused.
func ParseURL(raw string) (addr string, tls bool, prefix string, err error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false, "", fmt.Errorf("URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, "", fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false, "", fmt.Errorf("URL %q: want scheme://host:port[/path]", raw)
	}
	tls = u.Scheme == "https"
	addr = u.Host
	if u.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return addr, tls, u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// TransportKind classifies a failed HTTP exchange (fasthttp's error): how
// far the request got, which says whether it may have been applied.
type TransportKind uint8

// Transport failures.
const (
	// TransportConn: the connection broke after sending began, or failed
	// otherwise: the outcome is unknown.
	TransportConn TransportKind = iota
	// TransportTimeout: sent, and no answer in time: the outcome is unknown.
	TransportTimeout
	// TransportNoFreeConn: no connection was free in time: never sent.
	TransportNoFreeConn
	// TransportRefused: the server refused the connection: never sent.
	TransportRefused
	// TransportDialTimeout: the connection could not be made in time:
	// never sent.
	TransportDialTimeout
	// TransportDial: the connection could not be made otherwise: never sent.
	TransportDial
)

// Transport classifies err, a failed exchange's error.
func Transport(err error) TransportKind {
	var oe *net.OpError
	var ne net.Error
	timeout := errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return TransportNoFreeConn
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return TransportDialTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return TransportRefused
	case errors.As(err, &oe) && oe.Op == "dial":
		if timeout {
			return TransportDialTimeout
		}
		return TransportDial
	case timeout:
		return TransportTimeout
	}
	return TransportConn
}

// Dial reports a failure to connect: nothing of the request was sent.
func (k TransportKind) Dial() bool {
	return k == TransportRefused || k == TransportDialTimeout || k == TransportDial
}

// String returns the kind's label, as the load generator reports it:
// "timeout", "conn_error", "dial_error" (every failure to connect) or
// "no_free_conn".
func (k TransportKind) String() string {
	switch {
	case k == TransportTimeout:
		return "timeout"
	case k == TransportNoFreeConn:
		return "no_free_conn"
	case k.Dial():
		return "dial_error"
	}
	return "conn_error"
}

// Reason describes the failure of a call to the data server for end users
// and logs.
func (k TransportKind) Reason() string {
	switch k {
	case TransportTimeout, TransportDialTimeout:
		return "data server did not answer in time"
	case TransportRefused:
		return "data server refused the connection (is it running?)"
	case TransportNoFreeConn:
		return "too many calls waiting for the data server"
	}
	return "could not talk to the data server"
}
