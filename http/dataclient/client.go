// Package dataclient is the business server's client of the data server:
// the bank's teller.Accounts (and teller.Writer) over HTTP. It calls the
// data routes (/getLock, /getLocks, /unLock, /getSaldo, /setSaldo,
// /commit, /idem, /autentica) over pooled keep-alive connections, fails
// over between the data servers of one bank when a call surely was not
// applied, and reads every answer into the teller's error vocabulary
// (DataError). It also speaks to the original Python data server, which
// lacks /getLocks, /commit and /idem (see original.go).
package dataclient

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 2 * time.Second

// Config configures a Client.
type Config struct {
	// URL of the data server: "http://host:port", "https://host:port" or
	// "host:port". A path prefix is kept ("http://h:5000/bank"). Several
	// data servers of one bank (sharing its accounts), comma-separated, are
	// failed over: see Client.
	URL string
	// ServerToken is the credential sent on the data routes. Required.
	ServerToken string
	// ID is this business server's id_negoc (HOST:PORT): the lock holder
	// every call of the client is made for. Required.
	ID string
	// Timeout bounds every call, from the first byte sent to the last byte
	// read, including waiting for a free connection. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxConns bounds the keep-alive connections to the data server; calls
	// beyond it wait (within Timeout) for one to free up. Zero means 512.
	MaxConns int
	// LockTTL is the lease asked for with every lock (the ttl parameter of
	// getLock and getLocks). Zero sends none: the data server's default
	// applies.
	LockTTL time.Duration
	// Metrics, when set, receives the latency of every call by data route
	// (gobank_business_data_call_duration_seconds).
	Metrics *metrics.Registry
	// Logger is told when a call fails over to another data server; nil
	// discards that.
	Logger *slog.Logger
	// TracerProvider, when set, gives every call a client span, the child
	// of the span in the call's context, and sends its W3C traceparent
	// along. Nil: no spans, no extra header, at no cost.
	TracerProvider trace.TracerProvider
}

// Client calls a data server over a reused pool of keep-alive
// connections. It is safe for concurrent use. It is bound to one lock
// holder (Config.ID) and one lease (Config.LockTTL), as teller.Accounts
// asks.
//
// Given several data servers of one bank (servers in front of the same
// accounts), it calls one of them, the first to begin with, and fails over
// to the next in turn when a call fails in a way that says it was not
// applied, so that repeating it elsewhere is safe: the server could not be
// reached (connection refused, dial timeout: nothing was sent), or it
// answered 503 UNAVAILABLE (our data server's "not applied"). Reads
// (getSaldo, autentica, a GET of /idem) change nothing and are also
// repeated after a timeout, a broken connection or any 5xx. A write or lock
// whose outcome is unknown is never repeated: its caller handles that. The
// server that answered stays the one called until it fails in turn.
type Client struct {
	eps     []endpoint
	cur     atomic.Uint32 // index in eps of the data server called first
	logger  *slog.Logger
	query   string // "?id_negoc=<escaped id>"
	token   string
	timeout time.Duration
	ttl     time.Duration // lease asked for by Lock; 0: none
	calls   *callMetrics  // nil: not measured
	tracer  trace.Tracer  // nil: not traced
}

var (
	_ teller.Accounts = (*Client)(nil)
	_ teller.Writer   = (*Client)(nil)
)

// New checks cfg and builds a client. It does not contact the data server.
func New(cfg Config) (*Client, error) {
	if cfg.ServerToken == "" {
		return nil, errors.New("dataclient: no server credential")
	}
	if cfg.ID == "" {
		return nil, errors.New("dataclient: no id_negoc")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = fasthttp.DefaultMaxConnsPerHost
	}
	urls := SplitURLs(cfg.URL)
	if len(urls) == 0 {
		return nil, errors.New("dataclient: no data server URL")
	}
	c := &Client{
		query:   "?" + wire.ParamIDNegoc + "=" + url.QueryEscape(cfg.ID),
		token:   cfg.ServerToken,
		timeout: cfg.Timeout,
		ttl:     max(cfg.LockTTL, 0),
		logger:  cfg.Logger,
		tracer:  tracing.Tracer(cfg.TracerProvider),
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	for _, raw := range urls {
		ep, err := newEndpoint(raw, cfg)
		if err != nil {
			return nil, err
		}
		c.eps = append(c.eps, ep)
	}
	if cfg.Metrics != nil {
		c.calls = newCallMetrics(cfg.Metrics)
	}
	return c, nil
}

// SplitURLs splits a comma-separated list of data server URLs, dropping
// blanks.
func SplitURLs(list string) []string {
	var urls []string
	for u := range strings.SplitSeq(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// endpoint is one data server.
type endpoint struct {
	hc     *fasthttp.HostClient
	prefix string // scheme://host[:port][/path], no trailing slash
	// flavor is which implementation the data server is, once a refused
	// credential made the client ask (isOriginal): flavorUnknown until then.
	flavor *atomic.Int32
}

func newEndpoint(raw string, cfg Config) (endpoint, error) {
	addr, tls, prefix, err := ParseURL(raw)
	if err != nil {
		return endpoint{}, errors.New("dataclient: data server " + err.Error())
	}
	return endpoint{
		hc: &fasthttp.HostClient{
			Addr:                addr,
			IsTLS:               tls,
			Name:                "gobank-business",
			MaxConns:            cfg.MaxConns,
			MaxConnWaitTimeout:  cfg.Timeout,
			MaxIdleConnDuration: 30 * time.Second,
			// No ReadTimeout/WriteTimeout: every call has its own deadline,
			// longer for a getLock that waits in the data server's queue.
			MaxResponseBodySize: maxAnswerSize,
			// Every GET is idempotent (absolute writes, re-entrant locks,
			// unlocking a free account succeeds), so a retry after a
			// keep-alive connection closed under us is harmless. /commit
			// is a POST, which fasthttp never repeats: see Commit.
			MaxIdemponentCallAttempts: 2,
		},
		prefix: prefix,
		flavor: new(atomic.Int32),
	}, nil
}

// maxAnswerSize bounds the data server's answers: a few dozen bytes, an
// idempotency record (a fingerprint of at most 512 bytes and a body of at
// most 4 KiB, escaped as a JSON string), or a batch's grants (three lists
// of teller.MaxAccounts integers of up to 20 digits). A larger one is not
// the contract.
const maxAnswerSize = 2 << 20

// CloseIdleConnections closes the idle keep-alive connections.
func (c *Client) CloseIdleConnections() {
	for _, ep := range c.eps {
		ep.hc.CloseIdleConnections()
	}
}

// gaveUp reports a call whose caller gave up before it was sent: nothing
// reached the data server.
func gaveUp(ctx context.Context, route string, conta int64) error {
	if err := ctx.Err(); err != nil {
		return &DataError{Route: route, Conta: conta, Kind: teller.ErrUnavailable,
			Reason: "gave up before calling the data server", Err: err}
	}
	return nil
}

// roundTrip sends req, whose URI is tail (route and query) after a data
// server's prefix, to the data server called first, and to the next ones
// in turn while a failure says that repeating it elsewhere is safe
// (failOver), all within timeout (or ctx's deadline, if sooner). It
// returns send's result for the last data server tried. A data server that
// answers becomes the one called first.
func (c *Client) roundTrip(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, tail []byte,
	timeout time.Duration, route string, conta int64, lockParams bool) (answer, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	read := route == wire.RouteGetSaldo || route == wire.RouteAutentica ||
		(route == wire.RouteIdem && string(req.Header.Method()) == fasthttp.MethodGet)
	n := uint32(len(c.eps))
	first := c.cur.Load()
	var buf [512]byte
	for i := range n {
		k := (first + i) % n
		ep := &c.eps[k]
		req.SetRequestURIBytes(append(append(buf[:0], ep.prefix...), tail...))
		a, err := c.send(ctx, ep, req, resp, deadline, route, conta, lockParams)
		if err == nil || i == n-1 || !failOver(err, read) || !time.Now().Before(deadline) {
			if err == nil && k != first {
				c.cur.CompareAndSwap(first, k)
			}
			return a, err
		}
		next := c.eps[(k+1)%n].prefix
		c.logger.Warn("data server failed a call that was not applied; trying the next one",
			"route", route, "failed", ep.prefix, "next", next, "err", err)
		resp.Reset()
	}
	panic("unreachable: the last data server's answer is returned")
}

// failOver reports whether a call that failed with err may be sent to
// another data server: surely not applied (nothing could be sent, or our
// data server's 503 UNAVAILABLE), or, for a read, any failure of the data
// server or the transport.
func failOver(err error, read bool) bool {
	var de *DataError
	if !errors.As(err, &de) || !errors.Is(err, teller.ErrUnavailable) {
		return false // a refusal: another data server of the bank would say the same
	}
	switch {
	case de.Err != nil && Transport(de.Err).Dial():
		return true
	case de.notApplied():
		return true
	case read && (de.Err != nil || de.Status >= 500):
		return true
	}
	return false
}

// send performs req on data server ep before deadline and classifies the
// answer: the decoded body of a 200 answer without error_code, or a
// *DataError. lockParams says that req is a lock that names a wait or
// ttl, which a data server may refuse with 400.
func (c *Client) send(ctx context.Context, ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time,
	route string, conta int64, lockParams bool) (answer, error) {
	if c.tracer != nil {
		return c.sendTraced(ctx, ep, req, resp, deadline, route, conta, lockParams)
	}
	return c.sendOnce(ep, req, resp, deadline, route, conta, lockParams)
}

// sendTraced is send within a client span of its own, whose traceparent
// req carries.
func (c *Client) sendTraced(ctx context.Context, ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response,
	deadline time.Time, route string, conta int64, lockParams bool) (answer, error) {
	_, span := tracing.StartClient(ctx, c.tracer, &req.Header, "call "+route,
		semconv.HTTPRequestMethodKey.String(string(req.Header.Method())), semconv.ServerAddress(ep.hc.Addr),
		tracing.KeyConta.Int64(conta))
	a, err := c.sendOnce(ep, req, resp, deadline, route, conta, lockParams)
	status, code, reason := resp.StatusCode(), "", ""
	var de *DataError
	if errors.As(err, &de) {
		status, reason = de.Status, de.Reason // Reason names neither the address nor a credential
		if de.Code != 0 {
			code = de.Code.String()
		}
	}
	tracing.EndHTTP(span, status, code, reason)
	return a, err
}

// sendOnce is send without tracing.
func (c *Client) sendOnce(ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time,
	route string, conta int64, lockParams bool) (answer, error) {
	var start time.Time
	if c.calls != nil {
		start = time.Now()
	}
	err := ep.hc.DoDeadline(req, resp, deadline)
	if c.calls != nil {
		c.calls.route(route).Since(start)
	}
	if err != nil {
		return answer{}, &DataError{Route: route, Conta: conta, Kind: teller.ErrUnavailable,
			Reason: Transport(err).Reason(), Err: err}
	}
	if status := resp.StatusCode(); status != fasthttp.StatusOK {
		return answer{}, c.statusError(ep, resp, route, conta, lockParams)
	}
	if route == wire.RouteGetLocks && !bytes.Contains(resp.Body(), []byte(`"error_code"`)) {
		return answer{}, nil // lists of grants: lockMany reads them
	}
	a, ok := parseAnswer(resp.Body())
	if !ok {
		return answer{}, &DataError{Route: route, Conta: conta, Kind: teller.ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed answer"}
	}
	if !a.hasCode {
		return a, nil
	}
	return answer{}, codeError(route, conta, a, fasthttp.StatusOK)
}
