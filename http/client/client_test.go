package client_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// bank is a data server and a business server in front of it.
type bank struct {
	data     *dataservertest.Server
	business *businesstest.Server
	authURL  string
	// autentica counts the data server's /autentica requests by id_negoc.
	mu        sync.Mutex
	autentica map[string]int
}

func startBank(t *testing.T, opt businesstest.Options) *bank {
	t.Helper()
	b := &bank{autentica: map[string]int{}}
	b.data = dataservertest.Start(t, dataservertest.Options{
		Wrap: func(next fasthttp.RequestHandler) fasthttp.RequestHandler {
			return func(ctx *fasthttp.RequestCtx) {
				if string(ctx.Path()) == wire.RouteAutentica {
					b.mu.Lock()
					b.autentica[string(ctx.QueryArgs().Peek(wire.ParamIDNegoc))]++
					b.mu.Unlock()
				}
				next(ctx)
			}
		},
	})
	b.business = businesstest.Start(t, b.data, opt)
	b.authURL = b.data.URL + wire.RouteAutentica
	return b
}

// stop stops a test server once it is serving: a server stopped before
// its Serve goroutine has started would otherwise go on serving (fasthttp's
// Shutdown does nothing until Serve has registered the listener).
func stop(t *testing.T, baseURL string, stopFunc func()) {
	t.Helper()
	resp, err := http.Get(baseURL + wire.RouteStatus)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stopFunc()
}

func (b *bank) autenticaCount(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.autentica[id]
}

func (b *bank) client(t *testing.T, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(b.business.URL, b.authURL, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lockAs takes account conta's lock on the data server as another
// business server would.
func (b *bank) lockAs(t *testing.T, holder string, conta string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.data.URL+wire.RouteGetLock+"?id_negoc="+holder+"&conta="+conta, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(wire.HeaderToken, b.data.ServerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "error_code") {
		t.Fatalf("getLock: %s %s", resp.Status, body)
	}
}

func TestOperations(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f", client.WithClientID("ops-client"))
	ctx := context.Background()

	m, err := c.Deposito(ctx, 2, 5000)
	if err != nil || m != (client.Movement{Conta: 2, Valor: 5000, Saldo: 6000}) {
		t.Fatalf("Deposito(2, 5000) = %+v, %v", m, err)
	}
	tr, err := c.Transferencia(ctx, 2, 1, 2000)
	if err != nil || tr != (client.Transfer{ContaOrig: 2, ContaDest: 1, Valor: 2000, SaldoOrig: 4000, SaldoDest: 3000}) {
		t.Fatalf("Transferencia(2, 1, 2000) = %+v, %v", tr, err)
	}
	m, err = c.Saque(ctx, 1, 1000)
	if err != nil || m != (client.Movement{Conta: 1, Valor: 1000, Saldo: 2000}) {
		t.Fatalf("Saque(1, 1000) = %+v, %v", m, err)
	}
	s, err := c.Saldo(ctx, 2)
	if err != nil || s != 4000 {
		t.Fatalf("Saldo(2) = %d, %v", s, err)
	}
	// The money is where the answers say, on the data server itself.
	balances, holders := b.data.Balances(t)
	if balances[0] != 2000 || balances[1] != 4000 || balances[2] != 1000 {
		t.Errorf("balances = %v", balances)
	}
	for i, h := range holders {
		if h != "" {
			t.Errorf("account %d still locked by %q", i+1, h)
		}
	}
	// Authenticated once, lazily, with the client's id.
	if n := b.autenticaCount("ops-client"); n != 1 {
		t.Errorf("/autentica called %d times with id_negoc=ops-client, want 1", n)
	}
	if c.ID() != "ops-client" || c.BusinessURL() != b.business.URL {
		t.Errorf("ID() = %q, BusinessURL() = %q", c.ID(), c.BusinessURL())
	}
}

func TestAutentica(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	ctx := context.Background()

	good := b.client(t, "4c0e", client.WithClientID("good"))
	if err := good.Autentica(ctx); err != nil {
		t.Fatalf("Autentica with a demo token: %v", err)
	}
	if _, err := good.Saldo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := b.autenticaCount("good"); n != 1 {
		t.Errorf("after Autentica and one operation, /autentica called %d times, want 1", n)
	}

	bad := b.client(t, "nope", client.WithClientID("bad"))
	err := bad.Autentica(ctx)
	assertError(t, err, client.ErrUnauthorized, 401, teller.Unauthorized)
	// Operations report the refusal too, and retry authentication each time.
	for range 2 {
		_, err = bad.Deposito(ctx, 1, 10)
		assertError(t, err, client.ErrUnauthorized, 401, teller.Unauthorized)
	}
	if n := b.autenticaCount("bad"); n != 3 {
		t.Errorf("/autentica called %d times for the refused client, want 3", n)
	}
	if !strings.HasPrefix(err.Error(), "autentica: ") {
		t.Errorf("error %q does not name the step that failed", err)
	}
	if balances, _ := b.data.Balances(t); balances[0] != 1000 {
		t.Errorf("refused deposit changed the balance: %d", balances[0])
	}
}

// assertError checks err's sentinel, status and code.
func assertError(t *testing.T, err error, sentinel error, status int, code teller.Code) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not match %v", err, sentinel)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	if e.Status != status || e.Code != code {
		t.Errorf("error %v: Status %d Code %v, want %d %v", err, e.Status, e.Code, status, code)
	}
	if e.Message == "" {
		t.Errorf("error %v: no message", err)
	}
	for _, other := range []error{client.ErrUnauthorized, client.ErrLocked, client.ErrNotFound, client.ErrInvalidValue,
		client.ErrInsufficientFunds, client.ErrSameAccount, client.ErrUnavailable, client.ErrKeyReused} {
		if other != sentinel && errors.Is(err, other) {
			t.Errorf("error %v also matches %v", err, other)
		}
	}
}

func TestBusinessErrors(t *testing.T) {
	b := startBank(t, businesstest.Options{LockMode: business.ModeFailFast})
	c := b.client(t, "ba0f")
	ctx := context.Background()
	b.lockAs(t, "intruder:1", "3")

	tests := []struct {
		name     string
		call     func() error
		sentinel error
		status   int
		code     teller.Code
	}{
		{"locked account (403)", func() error { _, err := c.Deposito(ctx, 3, 10); return err },
			client.ErrLocked, 403, teller.LockedAccount},
		{"locked account in a transfer (403)", func() error { _, err := c.Transferencia(ctx, 1, 3, 10); return err },
			client.ErrLocked, 403, teller.LockedAccount},
		{"missing account (404)", func() error { _, err := c.Saldo(ctx, 99); return err },
			client.ErrNotFound, 404, teller.NotFound},
		{"missing destination (404)", func() error { _, err := c.Transferencia(ctx, 1, 99, 10); return err },
			client.ErrNotFound, 404, teller.NotFound},
		{"account zero (404)", func() error { _, err := c.Saque(ctx, 0, 10); return err },
			client.ErrNotFound, 404, teller.InvalidAccount},
		{"negative value (404)", func() error { _, err := c.Deposito(ctx, 1, -5); return err },
			client.ErrInvalidValue, 404, teller.InvalidValue},
		{"zero value (404)", func() error { _, err := c.Saque(ctx, 1, 0); return err },
			client.ErrInvalidValue, 404, teller.InvalidValue},
		{"overflow (404)", func() error { _, err := c.Deposito(ctx, 1, math.MaxInt64); return err },
			client.ErrInvalidValue, 404, teller.Overflow},
		{"insufficient funds (409)", func() error { _, err := c.Saque(ctx, 1, 1001); return err },
			client.ErrInsufficientFunds, 409, teller.InsufficientFunds},
		{"insufficient funds in a transfer (409)", func() error { _, err := c.Transferencia(ctx, 2, 1, 5000); return err },
			client.ErrInsufficientFunds, 409, teller.InsufficientFunds},
		{"same account (400)", func() error { _, err := c.Transferencia(ctx, 1, 1, 10); return err },
			client.ErrSameAccount, 400, teller.SameAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertError(t, tt.call(), tt.sentinel, tt.status, tt.code)
		})
	}
	// Nothing was changed by the refusals.
	balances, _ := b.data.Balances(t)
	for i, bal := range balances {
		if bal != 1000 {
			t.Errorf("account %d: balance %d after refused operations", i+1, bal)
		}
	}
}

// A token the data server accepts at authURL but the business server's own
// data server refuses: the business server answers 401 itself.
func TestBusinessUnauthorized(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	lenient := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{}")
	}))
	t.Cleanup(lenient.Close)
	c, err := client.New(b.business.URL, lenient.URL+"/autentica", "forged")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Saldo(context.Background(), 1)
	assertError(t, err, client.ErrUnauthorized, 401, teller.Unauthorized)
	if !strings.HasPrefix(err.Error(), "saldo 1: ") {
		t.Errorf("error %q does not name the operation", err)
	}
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()

	t.Run("business server stopped", func(t *testing.T) {
		b := startBank(t, businesstest.Options{})
		c := b.client(t, "ba0f")
		if err := c.Autentica(ctx); err != nil {
			t.Fatal(err)
		}
		stop(t, b.business.URL, b.business.Stop)
		_, err := c.Deposito(ctx, 1, 10)
		assertError(t, err, client.ErrUnavailable, 0, teller.Unavailable)
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("error %q does not say the connection was refused", err)
		}
	})

	t.Run("data server stopped (503)", func(t *testing.T) {
		b := startBank(t, businesstest.Options{DataTimeout: 500 * time.Millisecond})
		c := b.client(t, "ba0f")
		if err := c.Autentica(ctx); err != nil {
			t.Fatal(err)
		}
		stop(t, b.data.URL, b.data.Stop)
		_, err := c.Saque(ctx, 1, 10)
		assertError(t, err, client.ErrUnavailable, 503, teller.Unavailable)
	})

	t.Run("authentication server stopped", func(t *testing.T) {
		b := startBank(t, businesstest.Options{})
		c := b.client(t, "ba0f")
		stop(t, b.data.URL, b.data.Stop)
		_, err := c.Saldo(ctx, 1)
		assertError(t, err, client.ErrUnavailable, 0, teller.Unavailable)
	})

	t.Run("no answer in time", func(t *testing.T) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		c, err := client.New(slow.URL, slow.URL+"/autentica", "ba0f", client.WithTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = c.Autentica(ctx)
		assertError(t, err, client.ErrUnavailable, 0, teller.Unavailable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not unwrap to context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("timed out after %v, want about 100ms", d)
		}
	})
}

func TestCallerCancellation(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Deposito(ctx, 1, 10)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	if errors.Is(err, client.ErrUnavailable) {
		t.Errorf("the caller's own cancellation reported as unavailable: %v", err)
	}
}

// Answers that do not come from this project's servers: the original's
// (error status without a JSON body), a data server's (200 with
// error_code), and garbage.
func TestForeignAnswers(t *testing.T) {
	var status atomic.Int32
	var body atomic.Value
	var seenToken, seenPath atomic.Value
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/autentica" {
			io.WriteString(w, "{}")
			return
		}
		seenToken.Store(r.Header.Get("token"))
		seenPath.Store(r.URL.Path)
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, body.Load().(string))
	}))
	t.Cleanup(fake.Close)
	c, err := client.New(fake.URL+"/prefix/", fake.URL+"/autentica", "ba0f")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tests := []struct {
		name     string
		status   int
		body     string
		sentinel error // nil: success
		code     teller.Code
	}{
		{"original 404 page", 404, "<h1>Not Found</h1>", client.ErrNotFound, teller.NotFound},
		{"original 403 page", 403, "Forbidden", client.ErrLocked, teller.LockedAccount},
		{"401 empty", 401, "", client.ErrUnauthorized, teller.Unauthorized},
		{"409 empty", 409, "", client.ErrInsufficientFunds, teller.InsufficientFunds},
		{"502 proxy", 502, "bad gateway", client.ErrUnavailable, teller.Unavailable},
		{"500 empty", 500, "", nil, teller.Internal},
		{"200 with error_code", 200, `{"error_code":-1}`, client.ErrLocked, teller.LockedAccount},
		{"404 with code and message", 404, `{"error_code":-4,"error":"no such account"}`, client.ErrNotFound, teller.NotFound},
		{"200 garbage", 200, "<html>", nil, teller.Internal},
		{"200 without saldo", 200, `{}`, nil, teller.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status.Store(int32(tt.status))
			body.Store(tt.body)
			_, err := c.Saldo(ctx, 7)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if e.Code != tt.code || e.Status != tt.status {
				t.Errorf("error %v: Code %v Status %d, want %v %d", err, e.Code, e.Status, tt.code, tt.status)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not match %v", err, tt.sentinel)
			}
		})
	}
	status.Store(200)
	body.Store(`{"saldo":42}`)
	if s, err := c.Saldo(ctx, 7); err != nil || s != 42 {
		t.Fatalf("Saldo = %d, %v", s, err)
	}
	if got := seenPath.Load(); got != "/prefix/saldo/7" {
		t.Errorf("path %q, want /prefix/saldo/7", got)
	}
	if got := seenToken.Load(); got != "ba0f" {
		t.Errorf("token header %q, want ba0f", got)
	}
}

// Redirects are not followed: the token would go wherever they point.
func TestNoRedirects(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("token") != "" {
			leaked.Store(true)
		}
		io.WriteString(w, `{"saldo":1}`)
	}))
	t.Cleanup(elsewhere.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/autentica" {
			io.WriteString(w, "{}")
			return
		}
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	c, err := client.New(redirector.URL, redirector.URL+"/autentica", "ba0f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Saldo(context.Background(), 1); err == nil {
		t.Error("a redirect was followed as success")
	}
	if leaked.Load() {
		t.Error("the token was sent to the redirect's target")
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name, business, auth, token string
		ok                          bool
		wantBusiness                string
	}{
		{"plain", "http://localhost:5001", "http://localhost:5000/autentica", "ba0f", true, "http://localhost:5001"},
		{"trailing slash", "http://localhost:5001/", "http://localhost:5000/autentica", "ba0f", true, "http://localhost:5001"},
		{"no scheme", "localhost:5001", "localhost:5000/autentica", "ba0f", true, "http://localhost:5001"},
		{"https with prefix", "https://bank.example/api/", "https://bank.example/autentica", "ba0f", true, "https://bank.example/api"},
		{"auth with query", "http://h:5001", "http://h:5000/autentica?x=1", "ba0f", true, "http://h:5001"},
		{"empty business", "", "http://h:5000/autentica", "ba0f", false, ""},
		{"empty auth", "http://h:5001", "", "ba0f", false, ""},
		{"ftp", "ftp://h:5001", "http://h:5000/autentica", "ba0f", false, ""},
		{"no host", "http://", "http://h:5000/autentica", "ba0f", false, ""},
		{"business with query", "http://h:5001?x=1", "http://h:5000/autentica", "ba0f", false, ""},
		{"user info", "http://u:p@h:5001", "http://h:5000/autentica", "ba0f", false, ""},
		{"bad auth", "http://h:5001", "http://h:5000/%zz", "ba0f", false, ""},
		{"empty token", "http://h:5001", "http://h:5000/autentica", "", false, ""},
		{"token with newline", "http://h:5001", "http://h:5000/autentica", "ba0f\nX: y", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.business, tt.auth, tt.token)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%q, %q, %q) error = %v, want ok=%v", tt.business, tt.auth, tt.token, err, tt.ok)
			}
			if err != nil {
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q shows the token", err)
				}
				return
			}
			if c.BusinessURL() != tt.wantBusiness {
				t.Errorf("BusinessURL() = %q, want %q", c.BusinessURL(), tt.wantBusiness)
			}
			if !strings.HasPrefix(c.ID(), "client-") {
				t.Errorf("default ID %q", c.ID())
			}
		})
	}
	a, _ := client.New("h:1", "h:2/autentica", "t")
	b, _ := client.New("h:1", "h:2/autentica", "t")
	if a.ID() == b.ID() {
		t.Errorf("two clients share the default id %q", a.ID())
	}
}

func TestWithHTTPClient(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	var calls atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := b.client(t, "ba0f", client.WithHTTPClient(hc), client.WithHTTPClient(nil))
	if _, err := c.Saldo(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 { // /autentica, then /saldo
		t.Errorf("custom client used %d times, want 2", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Many goroutines share one Client: they authenticate once, and every
// deposit lands.
func TestConcurrentUse(t *testing.T) {
	b := startBank(t, businesstest.Options{})
	c := b.client(t, "ba0f", client.WithClientID("shared"))
	ctx := context.Background()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for range each {
				if _, err := c.Deposito(ctx, int64(1+w%2), 1); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s1, err1 := c.Saldo(ctx, 1)
	s2, err2 := c.Saldo(ctx, 2)
	if err1 != nil || err2 != nil || s1+s2 != 2000+workers*each {
		t.Errorf("balances %d, %d (%v, %v); want a total of %d", s1, s2, err1, err2, 2000+workers*each)
	}
	if n := b.autenticaCount("shared"); n != 1 {
		t.Errorf("/autentica called %d times by one shared client, want 1", n)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *client.Error
		want string
	}{
		{&client.Error{Op: "saque 1 5000", Status: 409, Code: teller.InsufficientFunds, Message: "insufficient funds; nothing changed"},
			"saque 1 5000: insufficient funds; nothing changed (INSUFFICIENT_FUNDS, HTTP 409)"},
		{&client.Error{Op: "saldo 3", Status: 403, Code: teller.LockedAccount},
			"saldo 3: account locked (LOCKED_ACCOUNT, HTTP 403)"},
		{&client.Error{Op: "autentica", Code: teller.Unavailable, Message: "cannot connect to the server", Err: errors.New("dial tcp: refused")},
			"autentica: cannot connect to the server (UNAVAILABLE): dial tcp: refused"},
		{&client.Error{Status: 500, Code: teller.Internal}, "server error (INTERNAL, HTTP 500)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	cause := &net.OpError{Op: "dial", Err: errors.New("refused")}
	e := &client.Error{Code: teller.Unavailable, Err: cause}
	var oe *net.OpError
	if !errors.As(e, &oe) || !errors.Is(e, client.ErrUnavailable) {
		t.Error("Error does not unwrap to its cause and its sentinel")
	}
	if errors.Is(&client.Error{Code: teller.Internal}, client.ErrUnavailable) {
		t.Error("INTERNAL matches a sentinel")
	}
}
