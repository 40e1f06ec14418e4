package business

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/metrics"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// Sentinel errors of DataClient, compared with errors.Is. Every error a
// DataClient returns is a *DataError wrapping exactly one of them (plus the
// transport error, if any), except for an error_code the client does not
// know, which wraps none and is a bug somewhere (answered 500). The domain
// errors are package wire's, the project's one vocabulary; dataCodes maps
// the data server's error_code to them.
var (
	ErrLocked         = teller.ErrLocked         // error_code -1: another id_negoc holds the account's lock
	ErrInvalidAccount = teller.ErrInvalidAccount // error_code -2: the data server did not accept the account number
	ErrInvalidValue   = teller.ErrInvalidValue   // error_code -3: the data server did not accept the value, e.g. a negative balance
	ErrNotFound       = teller.ErrNotFound       // error_code -4: no such account
	// error_code -5: the lock grant named by a write or unlock is no longer
	// in force (its lease ran out): the call was refused and the lock is lost.
	ErrStaleFence   = teller.ErrStaleFence
	ErrUnauthorized = teller.ErrUnauthorized // the data server refused the client's token at /autentica
	// ErrCredentialRefused: the data server refused this business server's
	// own credential on a data route (HTTP 401 or 403). Nothing works until
	// the operator gives the business server the data server's credential.
	ErrCredentialRefused = errors.New("data server refused this business server's credential " +
		"(give it the data server's token, e.g. through BANK_SERVER_TOKEN)")
	// ErrOriginalCredential wraps ErrCredentialRefused when the data
	// server that refused the credential (HTTP 401) is of the original
	// implementation: it has no /getLocks, and accepts on its data routes
	// only its own client tokens, never our generated credential.
	ErrOriginalCredential = fmt.Errorf("the data server is of the original implementation (it has no /getLocks), "+
		"which accepts only its own client tokens on its data routes: set BANK_SERVER_TOKEN to one of them: %w", ErrCredentialRefused)
	ErrUnavailable = teller.ErrUnavailable // unreachable, no answer in time, 5xx, or an answer outside the contract
	// ErrUnsupported: the data server lacks /commit or /idem (HTTP 404): it
	// is the original implementation, or an older version of ours. Nothing
	// was applied.
	ErrUnsupported = teller.ErrUnsupported
)

// DataError describes a failed data server call. Kind is one of the
// sentinels above (nil for an unknown error_code); Err is the transport
// error, if any. Reason is a short text that is safe to show end users: it
// names neither the data server's address nor any credential.
type DataError struct {
	Route  string      // data route, e.g. "/getLock"
	Conta  int64       // account, 0 for /autentica
	Kind   error       // sentinel, or nil
	Code   teller.Code // error_code answered, 0 if none
	Status int         // HTTP status answered, 0 if none
	Reason string      // short human-readable cause
	Err    error       // underlying transport error, or nil
}

func (e *DataError) Error() string {
	var b strings.Builder
	b.WriteString("data server ")
	b.WriteString(e.Route)
	if e.Conta != 0 {
		b.WriteString(" conta=")
		b.WriteString(strconv.FormatInt(e.Conta, 10))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is see both the sentinel and the transport error.
func (e *DataError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// DataClientConfig configures a DataClient.
type DataClientConfig struct {
	// URL of the data server: "http://host:port", "https://host:port" or
	// "host:port". A path prefix is kept ("http://h:5000/bank"). Several
	// data servers of one bank (sharing its accounts), comma-separated, are
	// failed over: see DataClient.
	URL string
	// ServerToken is the credential sent on the data routes. Required.
	ServerToken string
	// ID is this business server's id_negoc (HOST:PORT): the lock holder.
	// Required.
	ID string
	// Timeout bounds every call, from the first byte sent to the last byte
	// read, including waiting for a free connection. Zero means 2s.
	Timeout time.Duration
	// MaxConns bounds the keep-alive connections to the data server; calls
	// beyond it wait (within Timeout) for one to free up. Zero means 512.
	MaxConns int
	// LockTTL is the lease asked for with every getLock (its ttl
	// parameter). Zero sends none: the data server's default applies.
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

// DataClient calls a data server over a reused pool of keep-alive
// connections. It is safe for concurrent use.
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
type DataClient struct {
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

// NewDataClient checks cfg and builds a client. It does not contact the
// data server.
func NewDataClient(cfg DataClientConfig) (*DataClient, error) {
	if cfg.ServerToken == "" {
		return nil, errors.New("business: data client: no server credential")
	}
	if cfg.ID == "" {
		return nil, errors.New("business: data client: no id_negoc")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDataTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = fasthttp.DefaultMaxConnsPerHost
	}
	urls := SplitURLs(cfg.URL)
	if len(urls) == 0 {
		return nil, errors.New("business: data client: no data server URL")
	}
	c := &DataClient{
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

// gaveUp reports a call whose caller gave up before it was sent: nothing
// reached the data server.
func gaveUp(ctx context.Context, route string, conta int64) error {
	if err := ctx.Err(); err != nil {
		return &DataError{Route: route, Conta: conta, Kind: ErrUnavailable,
			Reason: "gave up before calling the data server", Err: err}
	}
	return nil
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

// Data server implementations, as isOriginal tells them apart.
const (
	flavorUnknown int32 = iota
	flavorOurs
	flavorOriginal
)

// isOriginal reports whether ep is a data server of the original
// implementation, which has no /getLocks: it answers a bare GET of it 404,
// where ours answers 400 (no id_negoc) or 401. It asks once, before
// deadline, and remembers the answer; a failed probe says false and is
// tried again next time.
func (ep *endpoint) isOriginal(deadline time.Time) bool {
	switch ep.flavor.Load() {
	case flavorOurs:
		return false
	case flavorOriginal:
		return true
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(ep.prefix + wire.RouteGetLocks)
	req.Header.SetMethod(fasthttp.MethodGet)
	if err := ep.hc.DoDeadline(req, resp, deadline); err != nil {
		return false
	}
	flavor := flavorOurs
	if resp.StatusCode() == fasthttp.StatusNotFound {
		flavor = flavorOriginal
	}
	ep.flavor.Store(flavor)
	return flavor == flavorOriginal
}

func newEndpoint(raw string, cfg DataClientConfig) (endpoint, error) {
	orig := raw
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("business: data client: data server URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("business: data client: data server URL %q: scheme must be http or https", orig)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("business: data client: data server URL %q: want scheme://host:port[/path]", orig)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	return endpoint{
		hc: &fasthttp.HostClient{
			Addr:                addr,
			IsTLS:               u.Scheme == "https",
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
		prefix: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"),
		flavor: new(atomic.Int32),
	}, nil
}

// maxAnswerSize bounds the data server's answers: a few dozen bytes, or an
// idempotency record (a fingerprint of at most 512 bytes and a body of at
// most 4 KiB, escaped as a JSON string). A larger one is not the contract.
const maxAnswerSize = 32 << 10

// CloseIdleConnections closes the idle keep-alive connections.
func (c *DataClient) CloseIdleConnections() {
	for _, ep := range c.eps {
		ep.hc.CloseIdleConnections()
	}
}

// Authenticate asks the data server whether clientToken is a client token.
// It returns nil, an error wrapping ErrUnauthorized when the token is
// refused, or one wrapping ErrUnavailable.
func (c *DataClient) Authenticate(ctx context.Context, clientToken string) error {
	if clientToken == "" {
		return &DataError{Route: wire.RouteAutentica, Kind: ErrUnauthorized, Reason: "missing token"}
	}
	_, err := c.call(ctx, wire.RouteAutentica, clientToken, 0, 0, false, 0, 0)
	return err
}

// Grant is the data server's answer to a lock request. The original data
// server answered {}: then Fence is 0 and HasSaldo false.
type Grant struct {
	// Fence names the grant; writes and unlocks made under it pass it, so
	// that the data server refuses them (ErrStaleFence) once the grant's
	// lease has run out. 0 when the data server does not fence.
	Fence uint64
	// Saldo is the balance when the lock was granted; it cannot change
	// while the lock is held, which spares a read.
	Saldo    int64
	HasSaldo bool
}

// Lock takes the lock of account conta for this business server. With
// wait > 0 the data server queues the request (FIFO) for up to wait while
// another business server holds the lock; a data server that does not
// know the parameter (the original) fails fast. Either way a lock still
// held by another business server fails with ErrLocked. Locking again a
// lock this business server holds succeeds (re-entrant). The grant's lease
// is the client's LockTTL, or the data server's default. The call's
// timeout is the client's Timeout plus wait.
func (c *DataClient) Lock(ctx context.Context, conta int64, wait time.Duration) (Grant, error) {
	a, err := c.call(ctx, wire.RouteGetLock, "", conta, 0, false, 0, wait)
	if err != nil {
		return Grant{}, err
	}
	return Grant{Fence: a.fence, Saldo: a.saldo, HasSaldo: a.hasSaldo}, nil
}

// LockMany takes the locks of the accounts contas (1 to 16, distinct) in
// one call to the data server (/getLocks), in the order given, waiting as
// Lock does for up to wait in all, and returns their grants in the same
// order. It takes all of them or none: on a refusal the data server has
// released those it took, and the error is Lock's (ErrLocked, ErrNotFound,
// ...) with Conta the first account. A data server without /getLocks (the
// original, or an older one) fails with ErrUnsupported, having taken
// nothing: use Lock for each account. Any other ErrUnavailable leaves
// unknown which locks were taken.
func (c *DataClient) LockMany(ctx context.Context, contas []int64, wait time.Duration) ([]Grant, error) {
	route := wire.RouteGetLocks
	var conta int64
	if len(contas) > 0 {
		conta = contas[0]
	}
	if err := gaveUp(ctx, route, conta); err != nil {
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [256]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	for _, id := range contas {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, id, 10)
	}
	if wait > 0 {
		uri = append(uri, "&"+wire.ParamWait+"="...)
		uri = strconv.AppendInt(uri, max(wait.Milliseconds(), 1), 10)
		uri = append(uri, "ms"...)
	}
	if c.ttl > 0 {
		uri = append(uri, "&"+wire.ParamTTL+"="...)
		uri = strconv.AppendInt(uri, max(c.ttl.Milliseconds(), 1), 10)
		uri = append(uri, "ms"...)
	}
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout+max(wait, 0), route, conta, wait > 0 || c.ttl > 0); err != nil {
		return nil, err
	}
	grants := make([]Grant, len(contas))
	if !parseGrants(resp.Body(), contas, grants) {
		return nil, &DataError{Route: route, Conta: conta, Kind: ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed answer (grants)"}
	}
	return grants, nil
}

// parseGrants reads {"contas":[...],"fences":[...],"saldos":[...]} into
// grants, checking that the accounts are contas in order and that every
// fence is positive.
func parseGrants(body []byte, contas []int64, grants []Grant) bool {
	var ids [16]int64
	got, ok := intList(body, `"contas"`, ids[:0])
	if !ok || len(got) != len(contas) {
		return false
	}
	for i := range got {
		if got[i] != contas[i] {
			return false
		}
	}
	var fences, saldos [16]int64
	f, ok1 := intList(body, `"fences"`, fences[:0])
	b, ok2 := intList(body, `"saldos"`, saldos[:0])
	if !ok1 || !ok2 || len(f) != len(contas) || len(b) != len(contas) {
		return false
	}
	for i := range grants {
		if f[i] <= 0 {
			return false
		}
		grants[i] = Grant{Fence: uint64(f[i]), Saldo: b[i], HasSaldo: true}
	}
	return true
}

// intList appends to dst the integers of the list under key (`"key"`) in a
// flat JSON object whose lists hold integers only, as /getLocks answers.
func intList(body []byte, key string, dst []int64) ([]int64, bool) {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return dst, false
	}
	b := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return dst, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return dst, false
	}
	end := bytes.IndexByte(b, ']')
	if end < 0 {
		return dst, false
	}
	items := bytes.TrimSpace(b[1:end])
	if len(items) == 0 {
		return dst, true
	}
	for item := range bytes.SplitSeq(items, []byte(",")) {
		n, ok := wire.ParseInt(bytes.TrimSpace(item))
		if !ok || len(dst) == cap(dst) {
			return dst, false
		}
		dst = append(dst, n)
	}
	return dst, true
}

// Unlock releases the lock of account conta; fence, when not 0, names the
// grant being released. Unlocking a free account succeeds; unlocking
// another holder's lock fails with ErrLocked, and a grant whose lease ran
// out with ErrStaleFence.
func (c *DataClient) Unlock(ctx context.Context, conta int64, fence uint64) error {
	_, err := c.call(ctx, wire.RouteUnLock, "", conta, 0, false, fence, 0)
	return err
}

// Read returns the balance of account conta. Reading needs no lock.
func (c *DataClient) Read(ctx context.Context, conta int64) (int64, error) {
	a, err := c.call(ctx, wire.RouteGetSaldo, "", conta, 0, false, 0, 0)
	if err != nil {
		return 0, err
	}
	if !a.hasSaldo {
		return 0, &DataError{Route: wire.RouteGetSaldo, Conta: conta, Kind: ErrUnavailable, Status: 200,
			Reason: "data server sent a malformed answer (no saldo)"}
	}
	return a.saldo, nil
}

// Write sets the balance of account conta to valor under the lock grant
// fence (0: none). It is refused with ErrLocked while another business
// server holds the lock, and with ErrStaleFence once the grant is over.
func (c *DataClient) Write(ctx context.Context, conta, valor int64, fence uint64) error {
	_, err := c.call(ctx, wire.RouteSetSaldo, "", conta, valor, true, fence, 0)
	return err
}

// answer is the decoded body of a 200 answer.
type answer struct {
	saldo    int64
	hasSaldo bool
	code     int64
	hasCode  bool
	fence    uint64
}

// call performs one GET and classifies its outcome. clientToken is sent
// instead of the server credential when not empty (for /autentica); fence
// and wait are sent when not zero.
func (c *DataClient) call(ctx context.Context, route, clientToken string, conta, valor int64, withValor bool,
	fence uint64, wait time.Duration) (answer, error) {
	if err := gaveUp(ctx, route, conta); err != nil {
		return answer{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [256]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	if route != wire.RouteAutentica {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, conta, 10)
		if withValor {
			uri = append(uri, "&"+wire.ParamValor+"="...)
			uri = strconv.AppendInt(uri, valor, 10)
		}
		if fence != 0 {
			uri = append(uri, "&"+wire.ParamFence+"="...)
			uri = strconv.AppendUint(uri, fence, 10)
		}
		if wait > 0 {
			uri = append(uri, "&"+wire.ParamWait+"="...)
			uri = strconv.AppendInt(uri, max(wait.Milliseconds(), 1), 10)
			uri = append(uri, "ms"...)
		}
		if route == wire.RouteGetLock && c.ttl > 0 {
			uri = append(uri, "&"+wire.ParamTTL+"="...)
			uri = strconv.AppendInt(uri, max(c.ttl.Milliseconds(), 1), 10)
			uri = append(uri, "ms"...)
		}
	}
	req.Header.SetMethod(fasthttp.MethodGet)
	if clientToken != "" {
		req.Header.Set(wire.HeaderToken, clientToken)
	} else {
		req.Header.Set(wire.HeaderToken, c.token)
	}
	lockParams := route == wire.RouteGetLock && (wait > 0 || c.ttl > 0)
	return c.roundTrip(ctx, req, resp, uri, c.timeout+max(wait, 0), route, conta, lockParams)
}

// roundTrip sends req, whose URI is tail (route and query) after a data
// server's prefix, to the data server called first, and to the next ones
// in turn while a failure says that repeating it elsewhere is safe
// (failOver), all within timeout (or ctx's deadline, if sooner). It
// returns send's result for the last data server tried. A data server that
// answers becomes the one called first.
func (c *DataClient) roundTrip(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, tail []byte,
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
	if !errors.As(err, &de) || !errors.Is(err, ErrUnavailable) {
		return false // a refusal: another data server of the bank would say the same
	}
	switch {
	case de.Err != nil && notSent(de.Err):
		return true
	case de.Status == fasthttp.StatusServiceUnavailable && de.Code == teller.Unavailable:
		return true
	case read && (de.Err != nil || de.Status >= 500):
		return true
	}
	return false
}

// notSent reports whether a transport error happened before any of the
// request could reach a data server: no connection was made.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &oe) && oe.Op == "dial")
}

// send performs req on data server ep before deadline and classifies the
// answer: the decoded body of a 200 answer without error_code, or a
// *DataError. lockParams says that req is a getLock that names a wait or
// ttl, which a data server may refuse with 400.
func (c *DataClient) send(ctx context.Context, ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time,
	route string, conta int64, lockParams bool) (answer, error) {
	if c.tracer != nil {
		return c.sendTraced(ctx, ep, req, resp, deadline, route, conta, lockParams)
	}
	return c.sendOnce(ep, req, resp, deadline, route, conta, lockParams)
}

// sendTraced is send within a client span of its own, whose traceparent
// req carries.
func (c *DataClient) sendTraced(ctx context.Context, ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response,
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
func (c *DataClient) sendOnce(ep *endpoint, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time,
	route string, conta int64, lockParams bool) (answer, error) {
	fail := func(kind error, status int, reason string, err error) (answer, error) {
		return answer{}, &DataError{Route: route, Conta: conta, Kind: kind, Status: status, Reason: reason, Err: err}
	}
	var start time.Time
	if c.calls != nil {
		start = time.Now()
	}
	err := ep.hc.DoDeadline(req, resp, deadline)
	if c.calls != nil {
		c.calls.route(route).Since(start)
	}
	if err != nil {
		return fail(ErrUnavailable, 0, transportReason(err), err)
	}
	status := resp.StatusCode()
	switch {
	case status == fasthttp.StatusOK:
	case (status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden) && route == wire.RouteAutentica:
		return fail(ErrUnauthorized, status, "token refused", nil)
	case status == fasthttp.StatusUnauthorized && ep.isOriginal(time.Now().Add(c.timeout)):
		// The original refuses our generated credential on every data
		// route: say what works instead (never the token itself).
		return fail(ErrOriginalCredential, status, "data server of the original implementation refused this business server's credential: "+
			"it accepts only its own client tokens on its data routes, so set BANK_SERVER_TOKEN to one of them", nil)
	case status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden:
		return fail(ErrCredentialRefused, status, "data server refused this business server's credential", nil)
	case status == fasthttp.StatusNotFound && (route == wire.RouteCommit || route == wire.RouteIdem || route == wire.RouteGetLocks):
		return fail(ErrUnsupported, status, "the data server has no "+route+" route (it is not gobank's data server, or an older one)", nil)
	case status >= 500:
		e := &DataError{Route: route, Conta: conta, Kind: ErrUnavailable, Status: status,
			Reason: "data server failed (HTTP " + strconv.Itoa(status) + ")"}
		// Our data server answers 503 UNAVAILABLE for a request it did not
		// apply (storage failed, account busy): keep the code, which says so.
		if a, ok := parseAnswer(resp.Body()); ok && a.hasCode {
			e.Code = teller.Code(a.code)
		}
		return answer{}, e
	case status == fasthttp.StatusBadRequest && lockParams:
		return fail(ErrUnavailable, status, "data server refused the lock's wait or ttl (HTTP 400): "+
			"the lock wait and ttl must not exceed its --max-lock-wait and --max-lock-ttl", nil)
	default:
		return fail(ErrUnavailable, status, "data server answered HTTP "+strconv.Itoa(status)+" (is the data server URL right?)", nil)
	}
	if route == wire.RouteGetLocks && !bytes.Contains(resp.Body(), []byte(`"error_code"`)) {
		return answer{}, nil // lists of grants: LockMany reads them
	}
	a, ok := parseAnswer(resp.Body())
	if !ok {
		return fail(ErrUnavailable, status, "data server sent a malformed answer", nil)
	}
	if !a.hasCode {
		return a, nil
	}
	e := &DataError{Route: route, Conta: conta, Code: teller.Code(a.code), Status: status}
	if d, ok := readDataCode(e.Code, route); ok {
		e.Kind, e.Reason = d.kind, d.reason
	} else {
		e.Reason = "data server answered unexpected error_code " + strconv.FormatInt(a.code, 10) + " (" + e.Code.String() + ")"
	}
	return answer{}, e
}

// dataCode is what an error_code of the data server means to this
// business server: the sentinel a DataError wraps, and its Reason.
type dataCode struct {
	code   teller.Code
	kind   error
	reason string
}

// dataCodes is the business server's one table for reading the data
// server's error_code (answered with 200, or 503 for UNAVAILABLE). The
// data server's side of the same boundary is package dataserver's
// refusals table.
var dataCodes = []dataCode{
	{teller.LockedAccount, ErrLocked, "account locked by another business server"},
	{teller.InvalidAccount, ErrInvalidAccount, "invalid account"},
	{teller.InvalidValue, ErrInvalidValue, "invalid value"},
	{teller.NotFound, ErrNotFound, "no such account"},
	{teller.StaleFence, ErrStaleFence, "the lock's lease ran out before the operation finished"},
	// On a data route, UNAUTHORIZED refuses this business server's own
	// credential; at /autentica, the client's token (readDataCode).
	{teller.Unauthorized, ErrCredentialRefused, "data server refused this business server's credential"},
	{teller.Unavailable, ErrUnavailable, "data server busy"},
}

// readDataCode looks code up in dataCodes, as answered on route.
func readDataCode(code teller.Code, route string) (dataCode, bool) {
	if code == teller.Unauthorized && route == wire.RouteAutentica {
		return dataCode{code, ErrUnauthorized, "token refused"}, true
	}
	for _, d := range dataCodes {
		if d.code == code {
			return d, true
		}
	}
	return dataCode{}, false
}

// Change is one account's part of a Commit.
type Change struct {
	Conta int64
	Saldo int64  // the new balance
	Fence uint64 // the grant this business server holds on Conta
}

// Record is the kept outcome of a request that carried an idempotency key:
// what a repetition of the request must be answered.
type Record struct {
	// Key is the key the record is kept under on the data server (at most
	// 128 bytes).
	Key string
	// Fingerprint names the request (route and parameters, at most 512
	// bytes), so that the key reused for another request is refused.
	Fingerprint string
	// Status and Body are the answer: an HTTP status and a JSON body (at
	// most 4 KiB).
	Status int
	Body   []byte
}

// Commit sets the balances of changes atomically and durably, each under
// the grant of its fence (the data server's /commit), releasing the locks
// when unlock is set, and keeps rec, when not nil, in the same durable
// batch. It returns (nil, nil) once applied.
//
// When rec's key has a record already, nothing is applied, the locks are
// not released, and that record is returned (with a nil error): a
// concurrent or earlier duplicate of the request won.
//
// A refusal changes nothing: ErrStaleFence (a grant is no longer in
// force), ErrNotFound, ErrInvalidValue (a negative balance), ErrLocked
// (another commit on the account is in progress), ErrCredentialRefused,
// ErrUnsupported (a data server without /commit: use Write), and
// ErrUnavailable with Code UNAVAILABLE and Status 503 (see NotApplied).
// Any other ErrUnavailable (timeout, connection lost, garbled answer) leaves
// the outcome unknown: the commit may have been applied and the locks
// released, or not.
//
// Commit is sent as a POST, which is never repeated automatically: a
// repeated commit that had been applied would be refused as stale, which
// would hide that it was applied.
func (c *DataClient) Commit(ctx context.Context, changes []Change, unlock bool, rec *Record) (*Record, error) {
	route := wire.RouteCommit
	var conta int64
	if len(changes) > 0 {
		conta = changes[0].Conta
	}
	if err := gaveUp(ctx, route, conta); err != nil {
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [512]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	for _, ch := range changes {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, ch.Conta, 10)
		uri = append(uri, "&"+wire.ParamValor+"="...)
		uri = strconv.AppendInt(uri, ch.Saldo, 10)
		uri = append(uri, "&"+wire.ParamFence+"="...)
		uri = strconv.AppendUint(uri, ch.Fence, 10)
	}
	if unlock {
		uri = append(uri, "&"+wire.ParamUnlock+"=1"...)
	}
	if rec != nil {
		uri = appendRecordParams(uri, rec)
		req.SetBody(rec.Body)
	}
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout, route, conta, false); err != nil {
		return nil, err
	}
	r, err := parseRecord(resp.Body(), route)
	if err != nil {
		return nil, err
	}
	if r.found {
		return &r.rec, nil
	}
	return nil, nil
}

// NotApplied reports whether err, from Commit, surely means that nothing
// was applied: a refusal, or our data server's 503 UNAVAILABLE (it answers
// that only for a request it did not apply). Otherwise the outcome of a
// failed Commit is unknown.
func NotApplied(err error) bool {
	if isDefinite(err) || errors.Is(err, ErrUnsupported) {
		return true
	}
	var de *DataError
	return errors.As(err, &de) && de.Status == fasthttp.StatusServiceUnavailable && de.Code == teller.Unavailable
}

// Outcome returns the record kept under key (GET /idem), and whether there
// is one. A data server that keeps no records fails with ErrUnsupported.
func (c *DataClient) Outcome(ctx context.Context, key string) (Record, bool, error) {
	r, err := c.idem(ctx, fasthttp.MethodGet, &Record{Key: key})
	return r.rec, r.found, err
}

// Keep keeps rec alone (POST /idem), for an outcome that changed no
// balance, such as a refusal, unless its key has a record already: that
// record is then returned instead, and rec is not kept.
func (c *DataClient) Keep(ctx context.Context, rec Record) (*Record, error) {
	r, err := c.idem(ctx, fasthttp.MethodPost, &rec)
	if err != nil || !r.found {
		return nil, err
	}
	return &r.rec, nil
}

func (c *DataClient) idem(ctx context.Context, method string, rec *Record) (recordAnswer, error) {
	route := wire.RouteIdem
	if err := gaveUp(ctx, route, 0); err != nil {
		return recordAnswer{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [512]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	if method == fasthttp.MethodPost {
		uri = appendRecordParams(uri, rec)
		req.SetBody(rec.Body)
		req.Header.SetContentType("application/json")
	} else {
		uri = append(uri, "&"+wire.ParamKey+"="...)
		uri = append(uri, url.QueryEscape(rec.Key)...)
	}
	req.Header.SetMethod(method)
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout, route, 0, false); err != nil {
		return recordAnswer{}, err
	}
	return parseRecord(resp.Body(), route)
}

// appendRecordParams appends a record's key, fingerprint and status to a
// query string.
func appendRecordParams(uri []byte, rec *Record) []byte {
	uri = append(uri, "&"+wire.ParamKey+"="...)
	uri = append(uri, url.QueryEscape(rec.Key)...)
	uri = append(uri, "&"+wire.ParamFingerprint+"="...)
	uri = append(uri, url.QueryEscape(rec.Fingerprint)...)
	uri = append(uri, "&"+wire.ParamStatus+"="...)
	return strconv.AppendInt(uri, int64(rec.Status), 10)
}

// recordAnswer is a decoded answer of /commit or /idem.
type recordAnswer struct {
	found bool
	rec   Record
}

// parseRecord decodes a 200 answer of /commit or /idem without error_code:
// {} (applied), {"found":false[,"stored":true]}, or a record
// {"found":true,"status":S,"fingerprint":"FP","body":"..."}.
func parseRecord(body []byte, route string) (recordAnswer, error) {
	// An applied commit answers {}: the answer of almost every call, spared
	// a pass through encoding/json (a few percent of a transfer's CPU).
	if string(bytes.TrimSpace(body)) == "{}" {
		return recordAnswer{}, nil
	}
	var m struct {
		Found       *bool   `json:"found"`
		Status      *int    `json:"status"`
		Fingerprint *string `json:"fingerprint"`
		Body        *string `json:"body"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return recordAnswer{}, &DataError{Route: route, Kind: ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed answer", Err: err}
	}
	if m.Found == nil || !*m.Found {
		return recordAnswer{}, nil
	}
	if m.Status == nil || *m.Status < 100 || *m.Status > 599 || m.Fingerprint == nil || m.Body == nil {
		return recordAnswer{}, &DataError{Route: route, Kind: ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed idempotency record"}
	}
	return recordAnswer{found: true, rec: Record{Fingerprint: *m.Fingerprint, Status: *m.Status, Body: []byte(*m.Body)}}, nil
}

// transportReason describes a transport failure for end users and logs.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "data server did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "data server refused the connection (is it running?)"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "too many calls waiting for the data server"
	}
	return "could not talk to the data server"
}

// parseAnswer decodes a 200 body: a JSON object whose fields saldo,
// error_code and fence, when present, must be integers (fence positive).
// Flat objects of numbers and strings, which is every answer of the data
// servers we know, are scanned by hand; anything else goes through
// encoding/json.
func parseAnswer(body []byte) (answer, bool) {
	if a, res := scanAnswer(body); res != scanUnsure {
		return a, res == scanOK
	}
	return parseAnswerJSON(body)
}

// parseAnswerJSON is parseAnswer through encoding/json.
func parseAnswerJSON(body []byte) (answer, bool) {
	// Only an object will do: json.Unmarshal would take null silently.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return answer{}, false
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, and "SALDO" is not "saldo".
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return answer{}, false
	}
	var a answer
	for _, key := range []string{"saldo", "error_code", "fence"} {
		if raw, ok := m[key]; ok && !a.set([]byte(key), raw) {
			return answer{}, false
		}
	}
	return a, true
}

// set stores the integer field key of an answer; it reports false for a
// value that is not an acceptable integer. Other keys are ignored.
func (a *answer) set(key, raw []byte) bool {
	switch string(key) {
	case "saldo", "error_code", "fence":
	default:
		return true
	}
	n, ok := wire.ParseInt(raw)
	if !ok {
		return false
	}
	switch string(key) {
	case "saldo":
		a.saldo, a.hasSaldo = n, true
	case "error_code":
		a.code, a.hasCode = n, true
	case "fence":
		if n <= 0 {
			return false
		}
		a.fence = uint64(n)
	}
	return true
}

const (
	scanOK     = iota // a valid answer
	scanBad           // not an acceptable answer
	scanUnsure        // beyond the hand scanner: ask encoding/json
)

// scanAnswer scans, without allocating, a flat JSON object whose values
// are integers or strings, without escapes. It answers
// scanBad only for what is surely not a JSON object, and scanUnsure for
// anything it does not fully understand, so that it never disagrees with
// parseAnswerJSON.
func scanAnswer(b []byte) (answer, int) {
	var a answer
	ws := func(i int) int {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i
	}
	i := ws(0)
	if i >= len(b) || b[i] != '{' {
		return a, scanBad
	}
	i = ws(i + 1)
	if i < len(b) && b[i] == '}' {
		if ws(i+1) != len(b) {
			return a, scanBad
		}
		return a, scanOK
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return a, scanUnsure
		}
		j := i + 1
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return a, scanUnsure
		}
		key := b[i+1 : j]
		i = ws(j + 1)
		if i >= len(b) || b[i] != ':' {
			return a, scanUnsure
		}
		i = ws(i + 1)
		if i >= len(b) {
			return a, scanUnsure
		}
		if b[i] == '"' {
			j = i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] < 0x20 || b[j] == '\\' {
					return a, scanUnsure // control characters, escapes
				}
				j++
			}
			if j >= len(b) {
				return a, scanUnsure
			}
			switch string(key) {
			case "saldo", "error_code", "fence":
				return a, scanUnsure // a number in a string: refused by the slow path
			}
			i = ws(j + 1)
		} else {
			j = i
			if j < len(b) && b[j] == '-' {
				j++
			}
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == i || (j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t') {
				return a, scanUnsure // fractions, exponents, literals, nesting
			}
			digits := b[i:j]
			if digits[0] == '-' {
				digits = digits[1:]
			}
			if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
				return a, scanUnsure // "-" or a leading zero: not JSON
			}
			if !a.set(key, b[i:j]) {
				return a, scanUnsure // out of range: refused by the slow path
			}
			i = ws(j)
		}
		if i < len(b) && b[i] == ',' {
			i = ws(i + 1)
			continue
		}
		if i < len(b) && b[i] == '}' && ws(i+1) == len(b) {
			return a, scanOK
		}
		return a, scanUnsure
	}
}

// isDefinite reports whether err is a refusal that the data server surely
// decided (so the call was not applied), rather than a failure in transit
// whose outcome is unknown.
func isDefinite(err error) bool {
	switch {
	case errors.Is(err, ErrLocked), errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalidAccount),
		errors.Is(err, ErrInvalidValue), errors.Is(err, ErrStaleFence), errors.Is(err, ErrCredentialRefused),
		errors.Is(err, ErrUnauthorized):
		return true
	}
	return false
}
