// Package client is the Go client of the bank's business servers, the
// counterpart of the original Python Client(business_url, auth_url):
//
//	c, err := client.New("http://localhost:5001", "http://localhost:5000/autentica", "ba0f")
//	mov, err := c.Deposito(ctx, 2, 5000)
//
// A Client authenticates its token once at the data server's /autentica, as
// the original client did, before its first operation, then calls the
// business server's routes with the token in the header "token". Failures
// are *Error values that match the package's sentinel errors with
// errors.Is (ErrLocked, ErrInsufficientFunds, ...), except that a call
// whose context the caller cancelled returns an error wrapping
// context.Canceled. A Client is safe for concurrent use.
//
// # Retries and idempotency keys
//
// Deposito, Saque and Transferencia send a fresh random Idempotency-Key
// (128 bits, in hex) with each logical call, and when the outcome is
// unknown — the connection failed or broke, no answer came in time, or the
// answer was 502, 503 or 504 — they repeat the call with the same key, up
// to WithRetries times (DefaultRetries), after a jittered exponential
// backoff, going round the business servers given with WithFailover. The
// business server applies a key's operation at most once and answers every
// repetition with the first outcome, so a retry never moves money twice.
// Key sets the key of one call explicitly, e.g. to repeat by hand a call
// that failed for good (the *Error says which key it used). Saldo is
// retried too, without a key (a read is safe to repeat). Refusals
// (insufficient funds, no such account, locked account...) are never
// retried. With WithRetries(0) no key is sent unless Key gives one, as the
// original client did: such calls work against business servers whose data
// server keeps no idempotency records.
//
// # Batches
//
// Transferencias sends up to MaxBatch transfers in one request (POST
// /transferencias), applied as one transaction with a result per
// transfer. A batch carries no Idempotency-Key (business servers keep no
// batch under one), so it is never retried when its outcome is unknown:
// only when it surely was not sent (no connection could be made).
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/tracing"
	"github.com/bank/gobank/http/wire"
)

// DefaultTimeout bounds each call (each HTTP round trip, body included)
// unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// DefaultRetries is how many times an operation whose outcome is unknown is
// repeated, unless WithRetries says otherwise.
const DefaultRetries = 2

// MaxKeyLength bounds an idempotency key: 1 to 128 printable ASCII
// characters.
const MaxKeyLength = 128

// Retry backoff: full jitter over an exponential bound, from
// retryBackoffMin doubling up to retryBackoffMax.
const (
	retryBackoffMin = 50 * time.Millisecond
	retryBackoffMax = time.Second
)

// maxBody bounds what is read of an answer: the bank's answers are a few
// dozen bytes, so anything near this is not the bank.
const maxBody = 64 << 10

// Movement is the answer to a deposit or a withdrawal.
type Movement struct {
	Conta int64 `json:"conta"` // the account
	Valor int64 `json:"valor"` // the amount deposited or withdrawn
	Saldo int64 `json:"saldo"` // the account's balance afterwards
}

// Transfer is the answer to a transfer.
type Transfer struct {
	ContaOrig int64 `json:"conta_orig"` // the account debited
	ContaDest int64 `json:"conta_dest"` // the account credited
	Valor     int64 `json:"valor"`      // the amount moved
	SaldoOrig int64 `json:"saldo_orig"` // ContaOrig's balance afterwards
	SaldoDest int64 `json:"saldo_dest"` // ContaDest's balance afterwards
}

// Client calls a business server (or, on retries, the others given with
// WithFailover), authenticating at one data server. Create it with New. It
// is safe for concurrent use.
type Client struct {
	business []string // scheme://host[:port][/prefix], no trailing slash; the first is the primary
	auth     *url.URL
	token    string
	id       string
	timeout  time.Duration
	retries  int
	hc       *http.Client
	tracer   trace.Tracer // nil: no spans

	authMu sync.Mutex
	authed bool
}

// Option configures a Client in New.
type Option func(*options)

type options struct {
	timeout  time.Duration
	hc       *http.Client
	id       string
	retries  int
	failover []string
	tp       trace.TracerProvider
}

// WithRetries sets how many times Deposito, Saque, Transferencia and Saldo
// are repeated when their outcome is unknown (connection failed or broken,
// no answer in time, 502, 503 or 504), each time with the same
// Idempotency-Key; n <= 0 means never, and then no key is sent unless Key
// gives one. The default is DefaultRetries. Transferencias, which carries
// no key, is repeated only when it surely was not sent.
func WithRetries(n int) Option {
	return func(o *options) { o.retries = max(n, 0) }
}

// WithFailover adds business servers for retries: the first attempt goes
// to New's business URL, and each retry to the next server in turn,
// wrapping around. They must serve the same data server, where the keys'
// outcomes are kept.
func WithFailover(urls ...string) Option {
	return func(o *options) { o.failover = append(o.failover, urls...) }
}

// CallOption configures one call of Deposito, Saque or Transferencia.
type CallOption func(*callOptions)

type callOptions struct {
	key string
}

// Key makes the call use key as its Idempotency-Key (1 to MaxKeyLength
// printable ASCII characters) instead of a random one, even without
// retries: a call repeated with the same key, by this or another client
// with the same token, is applied at most once and answered the first
// outcome. A key used for another operation is refused with ErrKeyReused.
func Key(key string) CallOption {
	return func(o *callOptions) { o.key = key }
}

// WithTimeout bounds every call of the Client (one HTTP round trip,
// reading the answer included); d <= 0 means no bound beyond the caller's
// context. The default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithHTTPClient makes the Client send its requests with hc instead of the
// package's shared client (which reuses connections and does not follow
// redirects). A nil hc is ignored.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc != nil {
			o.hc = hc
		}
	}
}

// WithTracerProvider makes the Client record a client span per operation
// (Deposito, Saque, Saldo, Transferencia, Autentica), retries included,
// and send its W3C traceparent with every request, so that the servers'
// spans join the caller's trace. Without it (or with nil) the Client
// records nothing and sends no trace header.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// WithClientID sets the id_negoc that Autentica presents to the data
// server, where it is logged. The default is "client-" followed by random
// hex digits, unique per Client.
func WithClientID(id string) Option {
	return func(o *options) { o.id = id }
}

// sharedHTTP is the default http.Client: one Transport, so that every
// Client in the process reuses the same keep-alive connections.
var sharedHTTP = sync.OnceValue(func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.ResponseHeaderTimeout = 0 // each call's context bounds it
	return &http.Client{
		Transport: tr,
		// The bank never redirects, and following one would send the
		// token header to wherever the redirect points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
})

// New returns a Client of the business server at businessURL (e.g.
// "http://localhost:5001"; a path prefix is kept) that authenticates token
// at authURL, the data server's full /autentica URL (e.g.
// "http://localhost:5000/autentica"). A URL without a scheme is taken as
// http. New checks its arguments but contacts no server.
func New(businessURL, authURL, token string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, retries: DefaultRetries}
	for _, opt := range opts {
		opt(&o)
	}
	var business []string
	for _, raw := range append([]string{businessURL}, o.failover...) {
		bu, err := parseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("client: business server URL: %w", err)
		}
		if bu.RawQuery != "" {
			return nil, fmt.Errorf("client: business server URL %q: must not have a query", raw)
		}
		bu.Path = strings.TrimRight(bu.Path, "/")
		bu.RawPath = ""
		business = append(business, bu.String())
	}
	au, err := parseURL(authURL)
	if err != nil {
		return nil, fmt.Errorf("client: authentication URL: %w", err)
	}
	if token == "" {
		return nil, errors.New("client: empty token")
	}
	if strings.ContainsAny(token, "\r\n\x00") {
		return nil, errors.New("client: the token contains a line break or NUL")
	}
	if o.id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.id = "client-" + hex.EncodeToString(b[:])
	}
	if o.hc == nil {
		o.hc = sharedHTTP()
	}
	return &Client{
		business: business,
		auth:     au,
		token:    token,
		id:       o.id,
		timeout:  o.timeout,
		retries:  o.retries,
		hc:       o.hc,
		tracer:   tracing.Tracer(o.tp),
	}, nil
}

// parseURL parses an http(s) URL, taking "host:port" as http.
func parseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: the scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%q: must not have user information or a fragment", raw)
	}
	return u, nil
}

// BusinessURL returns the business server's base URL, as normalized by New.
func (c *Client) BusinessURL() string { return c.business[0] }

// FailoverURLs returns the business servers that retries go to besides
// BusinessURL, as normalized by New.
func (c *Client) FailoverURLs() []string { return append([]string(nil), c.business[1:]...) }

// ID returns the id_negoc that Autentica presents.
func (c *Client) ID() string { return c.id }

// Autentica checks the Client's token at the data server: GET
// authURL?id_negoc=ID with the header "token", as the original client did.
// It returns nil when the data server accepts the token, and an error
// matching ErrUnauthorized when it refuses it. Operations call it
// themselves before the first of them succeeds, so calling it is only
// needed to check a token early.
func (c *Client) Autentica(ctx context.Context) (err error) {
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.startSpan(ctx, "autentica", nil, "")
		defer func() { endSpan(span, 1, err) }()
	}
	if err := c.autentica(ctx); err != nil {
		return err
	}
	c.authMu.Lock()
	c.authed = true
	c.authMu.Unlock()
	return nil
}

func (c *Client) autentica(ctx context.Context) error {
	u := *c.auth
	q := u.Query()
	q.Set(wire.ParamIDNegoc, c.id)
	u.RawQuery = q.Encode()
	_, err := c.call(ctx, "autentica", u.String(), nil, "")
	return err
}

// ensureAuth authenticates once; a failed attempt is retried by the next
// operation. Concurrent first operations authenticate only once.
func (c *Client) ensureAuth(ctx context.Context) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.authed {
		return nil
	}
	if err := c.autentica(ctx); err != nil {
		return err
	}
	c.authed = true
	return nil
}

// Deposito deposits valor into account conta and returns the new balance.
// It is retried with one idempotency key when its outcome is unknown (see
// the package documentation).
func (c *Client) Deposito(ctx context.Context, conta, valor int64, opts ...CallOption) (Movement, error) {
	var m Movement
	err := c.op(ctx, "deposito", &m, true, opts, conta, valor)
	return m, err
}

// Saque withdraws valor from account conta and returns the new balance. It
// fails with ErrInsufficientFunds when the balance would become negative.
// It is retried with one idempotency key when its outcome is unknown.
func (c *Client) Saque(ctx context.Context, conta, valor int64, opts ...CallOption) (Movement, error) {
	var m Movement
	err := c.op(ctx, "saque", &m, true, opts, conta, valor)
	return m, err
}

// Saldo returns the balance of account conta. It is retried when no answer
// comes (a read is safe to repeat).
func (c *Client) Saldo(ctx context.Context, conta int64) (int64, error) {
	var s struct {
		Saldo *int64 `json:"saldo"`
	}
	if err := c.op(ctx, "saldo", &s, false, nil, conta); err != nil {
		return 0, err
	}
	if s.Saldo == nil {
		return 0, &Error{Op: "saldo", Status: http.StatusOK, Code: teller.Internal, Message: `the answer has no "saldo"`}
	}
	return *s.Saldo, nil
}

// Transferencia moves valor from account orig to account dest and returns
// both new balances. It fails with ErrSameAccount when orig == dest and with
// ErrInsufficientFunds when orig's balance would become negative. It is
// retried with one idempotency key when its outcome is unknown.
func (c *Client) Transferencia(ctx context.Context, orig, dest, valor int64, opts ...CallOption) (Transfer, error) {
	var t Transfer
	err := c.op(ctx, "transferencia", &t, true, opts, orig, dest, valor)
	return t, err
}

// NewKey returns a random idempotency key: 128 bits in hex.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkKey checks an idempotency key given by the caller.
func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLength {
		return fmt.Errorf("the idempotency key must have 1 to %d characters, not %d", MaxKeyLength, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return errors.New("the idempotency key must be printable ASCII")
		}
	}
	return nil
}

// op runs one operation: authenticates if needed, calls
// /route/arg1/arg2... and decodes the answer into out, retrying (with one
// idempotency key when writes) while the outcome is unknown.
func (c *Client) op(ctx context.Context, route string, out any, writes bool, opts []CallOption, args ...int64) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	key := o.key
	if key != "" {
		if err := checkKey(key); err != nil {
			return &Error{Op: opName(route, args), Code: teller.BadRequest, Message: err.Error()}
		}
	} else if writes && c.retries > 0 {
		key = NewKey()
	}
	var err error
	attempts := 0
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.startSpan(ctx, route, args, key)
		defer func() { endSpan(span, attempts, err) }()
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !c.backoff(ctx, attempt) {
			break
		}
		attempts++
		err = c.attempt(ctx, c.business[attempt%len(c.business)], route, out, key, args)
		if err == nil || attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if e := (*Error)(nil); key != "" && errors.As(err, &e) {
		e.Key = key
	}
	return err
}

// attempt makes one attempt of an operation on the business server at base.
func (c *Client) attempt(ctx context.Context, base, route string, out any, key string, args []int64) error {
	if err := c.ensureAuth(ctx); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(base)
	b.WriteByte('/')
	b.WriteString(route)
	for _, a := range args {
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(a, 10))
	}
	body, err := c.call(ctx, route, b.String(), args, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Op: opName(route, args), Status: http.StatusOK, Code: teller.Internal,
			Message: "the answer is not the bank's JSON", Err: err}
	}
	return nil
}

// retryable reports whether err leaves an operation's outcome unknown, so
// that repeating it (with the same key) may help: no answer (connection
// failed or broken, timeout), or 502, 503 or 504.
func retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Code != teller.Unavailable {
		return false
	}
	switch e.Status {
	case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff waits before retry number attempt (1, 2, ...): a random time
// up to retryBackoffMin doubled attempt-1 times (at most retryBackoffMax),
// and at least a quarter of it. It reports false when ctx ended first.
func (c *Client) backoff(ctx context.Context, attempt int) bool {
	d := retryBackoffMin << min(attempt-1, 10)
	d = min(d, retryBackoffMax)
	d = d/4 + mrand.N(d-d/4+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errorBody is the bank's error answer.
type errorBody struct {
	Code    *teller.Code `json:"error_code"`
	Message string       `json:"error"`
}

// call GETs u with the token (and the idempotency key, when not empty) and
// returns the body of a 2xx answer that is not an error object, or an
// *Error.
func (c *Client) call(ctx context.Context, route, u string, args []int64, key string) ([]byte, error) {
	return c.send(ctx, opName(route, args), u, nil, key, maxBody)
}

// send makes one request of operation op to u with the token (and the
// idempotency key, when not empty): a GET, or a POST of the JSON body when
// body is not nil. It returns the body of a 2xx answer (of at most limit
// bytes) that is not an error object, or an *Error.
func (c *Client) send(ctx context.Context, op, u string, body []byte, key string, limit int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	callCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	method, content := http.MethodGet, io.Reader(nil)
	if body != nil {
		method, content = http.MethodPost, bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(callCtx, method, u, content)
	if err != nil {
		return nil, &Error{Op: op, Code: teller.BadRequest, Message: "cannot build the request", Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(wire.HeaderToken, c.token)
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	if c.tracer != nil {
		tracing.Propagator.Inject(callCtx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	// Drain a little more so the connection can be reused; stop if the
	// server sends more than the bank ever does.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	if len(answer) > limit {
		return nil, &Error{Op: op, Status: resp.StatusCode, Code: teller.Internal,
			Message: fmt.Sprintf("the answer is larger than %d bytes: not the bank", limit)}
	}
	var eb errorBody
	isJSONObject := json.Unmarshal(answer, &eb) == nil
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if isJSONObject && eb.Code != nil {
			// A data server answers domain errors with 200 and error_code:
			// authURL may well point at one.
			return nil, newError(op, resp.StatusCode, *eb.Code, eb.Message)
		}
		return answer, nil
	}
	code := codeForStatus(resp.StatusCode)
	msg := ""
	if isJSONObject {
		if eb.Code != nil {
			code = *eb.Code
		}
		msg = eb.Message
	}
	return nil, newError(op, resp.StatusCode, code, msg)
}

// transportError wraps a failed round trip. The caller cancelling its own
// context is reported as such; everything else (refused connection,
// timeout, reset) means the server is unavailable.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	msg := "the connection to the server failed"
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		msg = "the server did not answer in time"
	case errors.As(err, &oe) && oe.Op == "dial":
		msg = "cannot connect to the server"
	}
	return &Error{Op: op, Code: teller.Unavailable, Message: msg, Err: err}
}

// opName is the operation as a user typed it: "saque 1 1000".
func opName(route string, args []int64) string {
	if len(args) == 0 {
		return route
	}
	var b strings.Builder
	b.WriteString(route)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(a, 10))
	}
	return b.String()
}
