// Package liveview is a web page for experimenters that shows a data
// server at work: its accounts, hottest first, with their balance, lock
// holder, fence, queue and lease, refreshed twice a second; time series of
// the last minutes (requests by route, refusals by cause, lock waits,
// latency quantiles, live actors); and, in cluster mode, which member
// hosts which account.
//
// The page and its script are embedded in the binary (no build step, no
// CDN); they poll two JSON endpoints. It shows balances and lock holders
// (id_negoc values), never a token, and is served on an address of its
// own that must be asked for (dataserver --ui-addr), never on the bank's
// public port: keep it on loopback.
//
// Costs: a sampler reads the metrics and every account's operation count
// once a second; an account's state is read from its actor only when a
// page asks, for the accounts shown (one message each, outside the
// request path).
package liveview

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bank/gobank/actors"
)

// Accounts is what the page reads of the account actors (actors.Bank and
// cluster.Bank).
type Accounts interface {
	// Len returns the number of accounts, numbered 1..Len.
	Len() int
	// Ops appends every account's operation count so far.
	Ops(dst []uint64) []uint64
	// Inspect returns an account's state without counting an operation.
	Inspect(ctx context.Context, id int64) (actors.Reply, error)
}

// Placement is what the page reads of a cluster member (cluster.Bank).
type Placement interface {
	// Members returns the addresses of the members serving accounts.
	Members() []string
	// Address returns this member's address.
	Address() string
	// Owner returns the address of the member that hosts account id.
	Owner(id int64) string
}

// Config configures a live view.
type Config struct {
	// Accounts are the accounts shown. Required.
	Accounts Accounts
	// Metrics are the server's metrics, sampled once a second; nil: no
	// time series.
	Metrics Gatherer
	// Prefix names the server's metric families; empty: "gobank_data".
	Prefix string
	// Placement, when set, adds the cluster's members and where each
	// account lives.
	Placement Placement
	// Title names the server on the page, e.g. its public URL.
	Title string
	// Window is how much history the time series keep; zero: 5 minutes.
	Window time.Duration
	// Logger receives sampling errors; nil discards them.
	Logger *slog.Logger
}

// interval is the sampling period of the series and of account heat.
const interval = time.Second

// heatHalfLife is the half-life of an account's heat: its operations per
// second, averaged with exponentially decaying weights.
const heatHalfLife = 5 * time.Second

// maxShown bounds the accounts a page may ask for.
const maxShown = 500

// placementCountLimit is the largest bank whose accounts are counted per
// member at each sample (a hash per account).
const placementCountLimit = 1 << 16

// View is a live view. Create it with New; it samples until Close.
type View struct {
	cfg    Config
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	files  http.Handler

	sampling sync.Mutex // one sample at a time
	spare    []uint64   // the operation counts before the last, reused

	mu      sync.Mutex
	series  *ring
	last    reading
	hasLast bool
	ops     []uint64 // at the last sample
	heat    []float64
	hosted  map[string]int // accounts per member, at the last sample

	// The last accounts answer, shared by pages that poll together.
	cacheMu  sync.Mutex
	cacheKey int
	cacheAt  time.Time
	cached   []byte
}

//go:embed static
var static embed.FS

// New starts sampling for a live view of cfg.
func New(cfg Config) (*View, error) {
	if cfg.Accounts == nil {
		return nil, errors.New("liveview: no accounts")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "gobank_data"
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	v := &View{cfg: cfg, logger: logger, stop: make(chan struct{}), done: make(chan struct{}),
		files:  http.FileServerFS(sub),
		series: newRing(int(cfg.Window / interval)), heat: make([]float64, cfg.Accounts.Len())}
	v.sample(time.Now())
	go v.run()
	return v, nil
}

// Close stops sampling.
func (v *View) Close() {
	select {
	case <-v.stop:
	default:
		close(v.stop)
		<-v.done
	}
}

func (v *View) run() {
	defer close(v.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case now := <-t.C:
			v.sample(now)
		}
	}
}

// sample reads the metrics and the accounts' operation counts.
func (v *View) sample(now time.Time) {
	v.sampling.Lock()
	defer v.sampling.Unlock()
	var cur reading
	var ok bool
	if v.cfg.Metrics != nil {
		fams, err := v.cfg.Metrics.Gather()
		if err != nil {
			v.logger.Warn("live view: reading the metrics", "err", err)
		} else {
			cur, ok = read(fams, v.cfg.Prefix, now), true
		}
	}
	ops := v.cfg.Accounts.Ops(v.spare[:0])
	var hosted map[string]int
	if p := v.cfg.Placement; p != nil {
		hosted = map[string]int{}
		for _, m := range p.Members() {
			hosted[m] = 0
		}
		if len(ops) <= placementCountLimit {
			for id := range int64(len(ops)) {
				hosted[p.Owner(id+1)]++
			}
			delete(hosted, "")
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if ok {
		if v.hasLast {
			v.series.add(rate(v.last, cur))
		}
		v.last, v.hasLast = cur, true
	}
	if v.ops != nil && len(v.ops) == len(ops) {
		decay := math.Exp2(-interval.Seconds() / heatHalfLife.Seconds())
		for i := range ops {
			d := float64(ops[i] - v.ops[i])
			v.heat[i] = v.heat[i]*decay + d/interval.Seconds()*(1-decay)
			if v.heat[i] < 1e-3 {
				v.heat[i] = 0
			}
		}
	}
	v.spare, v.ops = v.ops, ops
	v.hosted = hosted
}

// Handler serves the page (/), its files, /api/accounts and /api/series.
// It answers only GET and HEAD, only to a Host that is an IP address,
// localhost or allowedHost (a defence against DNS rebinding: a web page
// elsewhere cannot read it through a name of its own).
func (v *View) Handler(allowedHost string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/accounts", v.serveAccounts)
	mux.HandleFunc("GET /api/series", v.serveSeries)
	mux.Handle("GET /", v.files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, allowedHost) {
			http.Error(w, "live view: unexpected Host header; open it by IP address or localhost", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a request's Host may be answered.
func hostAllowed(hostport, allowed string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	switch {
	case host == "":
		return false
	case net.ParseIP(host) != nil, strings.EqualFold(host, "localhost"):
		return true
	}
	return allowed != "" && strings.EqualFold(host, allowed)
}

// accountJSON is one account of /api/accounts.
type accountJSON struct {
	Conta   int64   `json:"conta"`
	Saldo   int64   `json:"saldo"`
	Holder  string  `json:"holder"`         // "" when free
	Fence   uint64  `json:"fence"`          // of the grant in force, or the last one
	Waiting int     `json:"waiting"`        // lock requests queued
	LeaseMS int64   `json:"lease_ms"`       // left on the grant's lease; 0: none
	OpsPerS float64 `json:"ops_per_s"`      // heat
	Ops     uint64  `json:"ops"`            // operations since start
	Member  string  `json:"member"`         // hosting member, in a cluster
	Error   string  `json:"error,omitzero"` // why the state could not be read
}

type memberJSON struct {
	Addr     string `json:"addr"`
	Accounts int    `json:"accounts"` // -1: not counted (a large bank)
	Self     bool   `json:"self"`
}

type accountsJSON struct {
	Title    string        `json:"title"`
	Now      int64         `json:"now_ms"`
	Total    int           `json:"total"`
	Active   int           `json:"active"` // accounts with any heat
	Accounts []accountJSON `json:"accounts"`
	Members  []memberJSON  `json:"members,omitempty"`
}

// hottest returns up to n accounts, hottest first (ties by id), filled up
// with the lowest ids when fewer are active, each with its heat and
// operation count; and how many accounts are active.
func (v *View) hottest(n int) (ids []int64, heat []float64, ops []uint64, active int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var hot []int64
	for i, h := range v.heat {
		if h > 0 {
			hot = append(hot, int64(i+1))
		}
	}
	active = len(hot)
	slices.SortFunc(hot, func(a, b int64) int {
		return cmp.Or(cmp.Compare(v.heat[b-1], v.heat[a-1]), cmp.Compare(a, b))
	})
	ids = hot[:min(n, len(hot))]
	for id := int64(1); len(ids) < n && id <= int64(len(v.heat)); id++ {
		if v.heat[id-1] == 0 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		heat = append(heat, v.heat[id-1])
		var o uint64
		if int(id) <= len(v.ops) {
			o = v.ops[id-1]
		}
		ops = append(ops, o)
	}
	return ids, heat, ops, active
}

// accountsTTL is how long an answer of /api/accounts is reused: pages
// polling at once cost the actors one inspection each.
const accountsTTL = 200 * time.Millisecond

func (v *View) serveAccounts(w http.ResponseWriter, r *http.Request) {
	n := 64
	if s := r.URL.Query().Get("limit"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > maxShown {
			http.Error(w, "limit: want 1 to "+strconv.Itoa(maxShown), http.StatusBadRequest)
			return
		}
	}
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	if v.cached == nil || v.cacheKey != n || time.Since(v.cacheAt) > accountsTTL {
		body, err := json.Marshal(v.accounts(r.Context(), n))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		v.cached, v.cacheKey, v.cacheAt = body, n, time.Now()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v.cached)
}

// accounts reads the n hottest accounts from their actors.
func (v *View) accounts(ctx context.Context, n int) accountsJSON {
	ids, heat, ops, active := v.hottest(n)
	now := time.Now()
	out := accountsJSON{Title: v.cfg.Title, Now: now.UnixMilli(), Total: v.cfg.Accounts.Len(), Active: active,
		Accounts: make([]accountJSON, 0, len(ids))}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for i, id := range ids {
		a := accountJSON{Conta: id, OpsPerS: math.Round(heat[i]*10) / 10, Ops: ops[i]}
		st, err := v.cfg.Accounts.Inspect(ctx, id)
		if err != nil {
			a.Error = err.Error()
		} else {
			a.Saldo, a.Holder, a.Fence, a.Waiting = st.Balance, st.Holder, st.Fence, st.Waiting
			if !st.Expires.IsZero() && st.Holder != "" {
				a.LeaseMS = max(0, st.Expires.Sub(now).Milliseconds())
			}
		}
		if v.cfg.Placement != nil {
			a.Member = v.cfg.Placement.Owner(id)
		}
		out.Accounts = append(out.Accounts, a)
	}
	if p := v.cfg.Placement; p != nil {
		self := p.Address()
		v.mu.Lock()
		hosted := v.hosted
		v.mu.Unlock()
		counted := v.cfg.Accounts.Len() <= placementCountLimit
		for _, m := range p.Members() {
			c := -1
			if counted {
				c = hosted[m]
			}
			out.Members = append(out.Members, memberJSON{Addr: m, Accounts: c, Self: m == self})
		}
	}
	return out
}

func (v *View) serveSeries(w http.ResponseWriter, _ *http.Request) {
	v.mu.Lock()
	pts := v.series.all()
	v.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(columns(pts, interval))
}

// Serve serves the view on addr (e.g. 127.0.0.1:5100) until ctx ends,
// then closes it. It returns once addr is listened on, with the address
// (its port chosen when addr's is 0).
func Serve(ctx context.Context, addr string, cfg Config) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	v, err := New(cfg)
	if err != nil {
		ln.Close()
		return "", err
	}
	srv := &http.Server{Handler: v.Handler(host), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			v.logger.Error("live view", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		v.Close()
	}()
	return ln.Addr().String(), nil
}

// IsLoopback reports whether addr's host is a loopback address or
// localhost: where the view belongs, since it shows balances and holders.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
