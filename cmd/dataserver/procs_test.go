package main

// Helpers of the tests with real processes: the dataserver and
// businessserver binaries are built once per run (as
// cmd/businessserver/kill_test.go does), each process runs in its own
// temporary working directory with only the environment given here, and
// every process is killed when its test ends.

import (
	"github.com/bank/gobank/cmd/internal/proctest"

	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Bank configuration of every test: the original's demo bank.
const (
	numAccounts = 10
	initial     = 1000
	clientToken = "ba0f"
)

// cluster is one data server (restarted on the same port and --data-dir)
// and its business servers, each process in its own working directory.
type cluster struct {
	t               *testing.T
	dataBin, bizBin string
	token           string // the server credential
	env             []string
	root            string
	dataDir, dataWD string
	dataArgs        []string // extra flags of every data server start
	data            *proctest.Proc
	dataPort        string
	starts          int // data server starts so far
	biz             []*proctest.Proc
	client          *http.Client
}

// newCluster prepares a cluster; nothing runs yet. dataDir may be empty
// for a fresh temporary --data-dir.
func newCluster(t *testing.T, dataDir string, dataArgs ...string) *cluster {
	t.Helper()
	dataBin, bizBin := proctest.Binaries(t)
	root := t.TempDir()
	home := filepath.Join(root, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if dataDir == "" {
		dataDir = filepath.Join(root, "data")
	}
	c := &cluster{
		t: t, dataBin: dataBin, bizBin: bizBin, token: randomHex(16), root: root,
		dataDir: dataDir, dataWD: mkdir(t, root, "data-wd"), dataArgs: dataArgs,
	}
	c.env = []string{"BANK_SERVER_TOKEN=" + c.token, "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	c.client = newClient()
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func newClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			DisableCompression:  true,
		},
	}
}

// dataCmd returns the data server's command line: the first start picks a
// free port, later ones reuse it.
func (c *cluster) dataCmd() []string {
	port := "0"
	if c.dataPort != "" {
		port = c.dataPort
	}
	args := []string{"--host", "127.0.0.1", "--port", port, "--data-dir", c.dataDir,
		"--log", filepath.Join(c.dataWD, "data_server.log"), "--accounts", strconv.Itoa(numAccounts),
		"--balance", strconv.Itoa(initial)}
	return append(args, c.dataArgs...)
}

// startData starts (or restarts) the data server and waits until it
// serves.
func (c *cluster) startData() *proctest.Proc {
	c.t.Helper()
	c.starts++
	c.data = proctest.Start(c.t, fmt.Sprintf("dataserver#%d", c.starts), c.dataWD, c.dataBin, c.env, c.dataCmd()...)
	c.dataPort = c.data.Port(c.t)
	return c.data
}

// startBusiness starts a business server in front of the data server with
// a 1 s lease on its locks, extra environment and flags.
func (c *cluster) startBusiness(name string, env []string, args ...string) *proctest.Proc {
	c.t.Helper()
	wd := mkdir(c.t, c.root, name+"-wd")
	all := []string{c.data.URL, "0", "--host", "127.0.0.1", "--id", name,
		"--log", filepath.Join(wd, "business_server.log"),
		"--lock-ttl", "1s", "--lock-wait", "500ms", "--data-timeout", "1s"}
	p := proctest.Start(c.t, name, wd, c.bizBin, append(append([]string{}, c.env...), env...), append(all, args...)...)
	c.biz = append(c.biz, p)
	return p
}

// dataURL returns the data server's base URL (stable across restarts).
func (c *cluster) dataURL() string { return "http://127.0.0.1:" + c.dataPort }

// dataGet calls a data route with the server credential as id_negoc
// "probe" and decodes the answer.
func (c *cluster) dataGet(route, query string) (dataReply, error) {
	req, err := http.NewRequest(http.MethodGet, c.dataURL()+route+"?id_negoc=probe&"+query, nil)
	if err != nil {
		return dataReply{}, err
	}
	req.Header.Set("token", c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return dataReply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return dataReply{}, err
	}
	var r dataReply
	r.Status = resp.StatusCode
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%s: %d %q: %v", route, resp.StatusCode, body, err)
	}
	return r, nil
}

// dataReply is a data server's JSON answer.
type dataReply struct {
	Status    int     `json:"-"`
	Fence     *uint64 `json:"fence"`
	Saldo     *int64  `json:"saldo"`
	ErrorCode *int64  `json:"error_code"`
	Error     string  `json:"error"`
}

// balances reads every account through the data server.
func (c *cluster) balances() []int64 {
	c.t.Helper()
	out := make([]int64, numAccounts)
	for a := range out {
		r, err := c.dataGet("/getSaldo", "conta="+strconv.Itoa(a+1))
		if err != nil || r.Status != http.StatusOK || r.Saldo == nil {
			c.t.Fatalf("getSaldo %d: %d %v (error_code %d %q)", a+1, r.Status, err, show(r.ErrorCode), r.Error)
		}
		out[a] = *r.Saldo
	}
	return out
}

// waitUnlocked polls every account with a fail-fast getLock until each is
// granted (and given back), and returns how long that took: a lock a dead
// holder left behind comes free when its lease ends.
func (c *cluster) waitUnlocked(timeout time.Duration) time.Duration {
	c.t.Helper()
	t0 := time.Now()
	for a := 1; a <= numAccounts; a++ {
		proctest.WaitFor(c.t, timeout-time.Since(t0), fmt.Sprintf("account %d's lock to be free", a), func() bool {
			r, err := c.dataGet("/getLock", "conta="+strconv.Itoa(a))
			if err != nil || r.Status != http.StatusOK {
				c.t.Fatalf("getLock %d: %d %v", a, r.Status, err)
			}
			if r.Fence == nil {
				if r.ErrorCode == nil || *r.ErrorCode != -1 {
					c.t.Fatalf("getLock %d: neither a grant nor LOCKED_ACCOUNT: %d %q", a, show(r.ErrorCode), r.Error)
				}
				return false
			}
			u, err := c.dataGet("/unLock", fmt.Sprintf("conta=%d&fence=%d", a, *r.Fence))
			if err != nil || u.ErrorCode != nil {
				c.t.Fatalf("unLock %d: %v %d %q", a, err, show(u.ErrorCode), u.Error)
			}
			return true
		})
	}
	return time.Since(t0)
}

func show(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// opLogLinesComplete checks that every line of an operation log is whole:
// it ends in a newline and has the original's shape "MM/DD/YYYY HH:MM:SS,
// N, ID_NEGOC, OPERACAO[, PARAMS...]". It returns the number of lines.
func opLogLinesComplete(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return 0
	}
	if b[len(b)-1] != '\n' {
		last := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
		t.Errorf("%s: the last line is cut: %q", path, last)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	bad := 0
	for i, l := range lines {
		if !opLogLineRE.MatchString(l) {
			if bad < 5 {
				t.Errorf("%s:%d: not a whole log line: %q", path, i+1, l)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d malformed lines in all", path, bad)
	}
	return len(lines)
}

var opLogLineRE = regexp.MustCompile(`^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d, \d+, [^,]+, [A-Za-z]+(, [^,]*)*$`)

// Operations the load sends through the business servers.
type opKind uint8

const (
	opDeposit opKind = iota
	opWithdraw
	opTransfer
)

// outcome is what the client knows of an operation.
type outcome uint8

const (
	outUnknown outcome = iota // no answer, or a 5xx: applied or not
	outOK                     // 200: applied
	outRefused                // a 4xx refusal: not applied
)

// op is one operation and what became of it.
type op struct {
	kind    opKind
	a, b, v int64 // account (source of a transfer), destination, amount
	key     string
	out     outcome
	status  int    // last HTTP status (0: transport error)
	saldo   *int64 // the balance a 200 answer showed (a transfer's: the source's)
	err     string // transport error
	// resolved: the outcome was unknown and a repetition with the same key
	// told it; replayed: that answer was the kept outcome.
	resolved, replayed bool
}

func (o *op) path() string {
	switch o.kind {
	case opDeposit:
		return fmt.Sprintf("/deposito/%d/%d", o.a, o.v)
	case opWithdraw:
		return fmt.Sprintf("/saque/%d/%d", o.a, o.v)
	}
	return fmt.Sprintf("/transferencia/%d/%d/%d", o.a, o.b, o.v)
}

func (o *op) String() string {
	return fmt.Sprintf("%s key=%s status=%d err=%q", o.path(), o.key, o.status, o.err)
}

// send sends o to the business server at base with its key, and records
// the outcome.
func send(client *http.Client, base string, o *op) (replayed bool) {
	o.status, o.err = 0, ""
	req, err := http.NewRequest(http.MethodGet, base+o.path(), nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("token", clientToken)
	req.Header.Set("Idempotency-Key", o.key)
	resp, err := client.Do(req)
	if err != nil {
		o.out, o.err = outUnknown, err.Error()
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.status = resp.StatusCode
	switch {
	case err != nil:
		o.out, o.err = outUnknown, err.Error()
	case resp.StatusCode == http.StatusOK:
		o.out = outOK
		var answer struct {
			Saldo *int64 `json:"saldo"`
		}
		if json.Unmarshal(body, &answer) == nil {
			o.saldo = answer.Saldo
		}
	case resp.StatusCode >= 500:
		o.out = outUnknown
	default:
		o.out = outRefused
	}
	return resp.Header.Get("Idempotent-Replayed") == "true"
}

// loadGen sends deposits, withdrawals and transfers from several workers
// to the business servers, round robin, until stopped, recording every
// operation.
type loadGen struct {
	client  *http.Client
	urls    []string
	prefix  string        // of the idempotency keys
	stopped chan struct{} // closed by stop
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	ops     []*op
	acked   atomic.Int64
	unknown atomic.Int64
	// next makes worker w's i-th operation (its key set by work); nil:
	// mixed, see mixed.
	next func(r *rng) *op
	// onAnswer, when set, sees every operation once answered, on its
	// worker's goroutine.
	onAnswer func(*op)
}

// startLoad starts workers sending to urls. seed makes the mix of
// operations reproducible.
// The test must call stop; a failed test's cleanup does.
func startLoad(t *testing.T, client *http.Client, urls []string, workers int, seed uint64) *loadGen {
	return startLoadOf(t, &loadGen{client: client, urls: urls}, workers, seed)
}

// startLoadOf is startLoad of l, whose client, urls and, if wanted, next
// and onAnswer are set.
func startLoadOf(t *testing.T, l *loadGen, workers int, seed uint64) *loadGen {
	l.prefix, l.stopped = randomHex(6), make(chan struct{})
	for w := range workers {
		l.wg.Go(func() { l.work(w, seed) })
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *loadGen) work(w int, seed uint64) {
	rng := newRNG(seed, uint64(w))
	var mine []*op
	defer func() {
		l.mu.Lock()
		l.ops = append(l.ops, mine...)
		l.mu.Unlock()
	}()
	backoff := time.NewTimer(0)
	<-backoff.C
	for i := 0; ; i++ {
		select {
		case <-l.stopped:
			return
		default:
		}
		next := mixed
		if l.next != nil {
			next = l.next
		}
		o := next(rng)
		o.key = fmt.Sprintf("%s-w%d-%d", l.prefix, w, i)
		// Never cancelled: once stop returns, every operation sent has
		// been answered (or timed out), so none is still running.
		send(l.client, l.urls[(w+i)%len(l.urls)], o)
		if l.onAnswer != nil {
			l.onAnswer(o)
		}
		mine = append(mine, o)
		switch o.out {
		case outOK:
			l.acked.Add(1)
		case outUnknown:
			l.unknown.Add(1)
			// Back off a little while the data server is down, rather
			// than spin on refused connections.
			backoff.Reset(10 * time.Millisecond)
			select {
			case <-backoff.C:
			case <-l.stopped:
			}
		}
	}
}

// mixed is the load's default mix: a quarter deposits, a quarter
// withdrawals, half transfers, over every account, of 1 to 400.
func mixed(rng *rng) *op {
	o := &op{a: int64(rng.n(numAccounts)) + 1, v: int64(rng.n(400)) + 1}
	switch r := rng.n(4); r {
	case 0:
		o.kind = opDeposit
	case 1:
		o.kind = opWithdraw
	default:
		o.kind = opTransfer
		o.b = (o.a+int64(rng.n(numAccounts-1)))%numAccounts + 1
	}
	return o
}

// waitAcked waits until n more operations have been acknowledged than
// when it was called, and returns how long that took.
func (l *loadGen) waitAcked(t *testing.T, n int64, timeout time.Duration, what string) time.Duration {
	t.Helper()
	t0 := time.Now()
	base := l.acked.Load()
	proctest.WaitFor(t, timeout, fmt.Sprintf("%d acknowledged operations %s", n, what), func() bool { return l.acked.Load() >= base+n })
	return time.Since(t0)
}

// stop ends the load and waits for every worker to have its answer.
func (l *loadGen) stop() []*op {
	l.once.Do(func() { close(l.stopped) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops
}

// rng is a small deterministic generator (SplitMix64).
type rng struct{ s uint64 }

func newRNG(seed, stream uint64) *rng { return &rng{s: seed*0x9E3779B97F4A7C15 + stream + 1} }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) n(k int) int { return int(r.next() % uint64(k)) }

// tally counts operations by outcome.
type tally struct{ ok, refused, unknown, resolved, replayed int }

func count(ops []*op) (t tally) {
	for _, o := range ops {
		switch o.out {
		case outOK:
			t.ok++
		case outRefused:
			t.refused++
		default:
			t.unknown++
		}
		if o.resolved {
			t.resolved++
		}
		if o.replayed {
			t.replayed++
		}
	}
	return t
}

// checkBounds checks the balances against the acknowledged operations:
// each account's balance lies within what its acknowledged operations and
// those with unknown outcomes allow, none is negative, and the sum is
// initial + acknowledged deposits - acknowledged withdrawals, widened only
// by the deposits and withdrawals with unknown outcomes (transfers move no
// money in or out: they are atomic).
func checkBounds(t *testing.T, bal []int64, ops []*op) {
	t.Helper()
	lo := make([]int64, numAccounts)
	hi := make([]int64, numAccounts)
	for i := range lo {
		lo[i], hi[i] = initial, initial
	}
	sumLo, sumHi := int64(numAccounts*initial), int64(numAccounts*initial)
	for _, o := range ops {
		a := o.a - 1
		switch o.out {
		case outOK:
			switch o.kind {
			case opDeposit:
				lo[a] += o.v
				hi[a] += o.v
				sumLo += o.v
				sumHi += o.v
			case opWithdraw:
				lo[a] -= o.v
				hi[a] -= o.v
				sumLo -= o.v
				sumHi -= o.v
			case opTransfer:
				lo[a] -= o.v
				hi[a] -= o.v
				lo[o.b-1] += o.v
				hi[o.b-1] += o.v
			}
		case outUnknown:
			switch o.kind {
			case opDeposit:
				hi[a] += o.v
				sumHi += o.v
			case opWithdraw:
				lo[a] -= o.v
				sumLo -= o.v
			case opTransfer:
				lo[a] -= o.v
				hi[o.b-1] += o.v
			}
		}
	}
	var sum int64
	for i, b := range bal {
		sum += b
		if b < 0 {
			t.Errorf("account %d: negative balance %d", i+1, b)
		}
		if b < lo[i] || b > hi[i] {
			t.Errorf("account %d: balance %d outside [%d, %d], the range its acknowledged and unknown operations allow", i+1, b, lo[i], hi[i])
		}
	}
	if sum < sumLo || sum > sumHi {
		t.Errorf("total %d outside [%d, %d]: money created or destroyed", sum, sumLo, sumHi)
	}
}

// resolve repeats every operation whose outcome is unknown with its key
// until the answer is definite: the business servers apply a key at most
// once, so the answer says whether the first attempt was applied (the kept
// outcome, replayed) or, if it never was, applies it now. Afterwards every
// operation's outcome is known.
func resolve(t *testing.T, client *http.Client, base string, ops []*op) {
	t.Helper()
	for _, o := range ops {
		if o.out != outUnknown {
			continue
		}
		for attempt := 0; ; attempt++ {
			o.replayed = send(client, base, o)
			if o.out != outUnknown {
				break
			}
			if attempt == 50 {
				t.Fatalf("%v: outcome still unknown after 50 repetitions", o)
			}
			time.Sleep(20 * time.Millisecond) // backoff between retries of a failing request
		}
		o.resolved = true
		if o.status == http.StatusUnprocessableEntity {
			t.Errorf("%v: the key was refused as reused for another request", o)
		}
	}
}

// checkExact checks that, once every outcome is known, each account holds
// exactly initial plus the effects of the applied operations.
func checkExact(t *testing.T, bal []int64, ops []*op) {
	t.Helper()
	want := make([]int64, numAccounts)
	for i := range want {
		want[i] = initial
	}
	var wantSum int64 = numAccounts * initial
	for _, o := range ops {
		if o.out == outUnknown {
			t.Fatalf("%v: outcome unknown", o)
		}
		if o.out != outOK {
			continue
		}
		switch o.kind {
		case opDeposit:
			want[o.a-1] += o.v
			wantSum += o.v
		case opWithdraw:
			want[o.a-1] -= o.v
			wantSum -= o.v
		case opTransfer:
			want[o.a-1] -= o.v
			want[o.b-1] += o.v
		}
	}
	var sum int64
	for i, b := range bal {
		sum += b
		if b != want[i] {
			t.Errorf("account %d: balance %d, want %d (initial + the applied operations)", i+1, b, want[i])
		}
	}
	if sum != wantSum {
		t.Errorf("total %d, want %d", sum, wantSum)
	}
}
