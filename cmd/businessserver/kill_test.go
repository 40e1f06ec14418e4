package main

// Tests with real processes: the dataserver and businessserver binaries are
// built once per run, started on free loopback ports and killed with
// SIGKILL, as a crash would.

import (
	"github.com/bank/gobank/cmd/internal/proctest"

	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// reply is a data or business server's JSON answer.
type reply struct {
	Fence     *uint64 `json:"fence"`
	Saldo     *int64  `json:"saldo"`
	SaldoOrig *int64  `json:"saldo_orig"`
	SaldoDest *int64  `json:"saldo_dest"`
	ErrorCode *int64  `json:"error_code"`
	Error     string  `json:"error"`
}

// show formats an optional number.
func show[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

var client = &http.Client{Timeout: 20 * time.Second}

// call GETs url with the header token and decodes the JSON answer.
func call(url, token string) (int, reply, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, reply{}, err
	}
	req.Header.Set("token", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, reply{}, err
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return resp.StatusCode, r, fmt.Errorf("%s: %q: %v", url, body, err)
	}
	return resp.StatusCode, r, nil
}

// dataClient calls the data server's routes with the server credential,
// as the lock holder id.
type dataClient struct {
	t              *testing.T
	url, token, id string
}

func (c dataClient) do(route string, conta int64, extra string) reply {
	c.t.Helper()
	u := fmt.Sprintf("%s%s?id_negoc=%s&conta=%d%s", c.url, route, url.QueryEscape(c.id), conta, extra)
	status, r, err := call(u, c.token)
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("%s: %d %v", u, status, err)
	}
	return r
}

// lock asks for account conta's lock, waiting up to wait (0: fail fast).
func (c dataClient) lock(conta int64, wait time.Duration) reply {
	c.t.Helper()
	extra := ""
	if wait > 0 {
		extra = "&wait=" + wait.String()
	}
	return c.do("/getLock", conta, extra)
}

func (c dataClient) unlock(conta int64, fence uint64) {
	c.t.Helper()
	if r := c.do("/unLock", conta, "&fence="+strconv.FormatUint(fence, 10)); r.ErrorCode != nil {
		c.t.Fatalf("unLock %d fence %d: error_code %d %s", conta, fence, *r.ErrorCode, r.Error)
	}
}

func (c dataClient) balance(conta int64) int64 {
	c.t.Helper()
	r := c.do("/getSaldo", conta, "")
	if r.Saldo == nil {
		c.t.Fatalf("getSaldo %d: no saldo (error %q)", conta, r.Error)
	}
	return *r.Saldo
}

// TestKilledHolder kills (SIGKILL) a business server process that holds
// the locks of a transfer it has not written yet, and checks that the
// locks come free when their lease ends (not before, and within the lease
// plus a margin), that the next grant has a larger fence, that nothing the
// killed server did changed a balance, and that another business server
// process then transfers between the same accounts.
func TestKilledHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server processes")
	}
	dataBin, businessBin := proctest.Binaries(t)
	const (
		accounts = 10
		initial  = 1000
		valor    = 300
		margin   = 1500 * time.Millisecond
	)
	tests := []struct {
		name     string
		dataTTL  string        // dataserver --lock-ttl
		bsTTL    string        // businessserver --lock-ttl
		lease    time.Duration // the lease in force
		clientTk string
	}{
		{"data server's lease (business --lock-ttl 0)", "1s", "0s", time.Second, "ba0f"},
		{"business server's lease (--lock-ttl 1s)", "1m", "1s", time.Second, "8d69"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var secret [16]byte
			_, _ = rand.Read(secret[:])
			token := hex.EncodeToString(secret[:])
			env := []string{"BANK_SERVER_TOKEN=" + token, "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}

			data := proctest.Start(t, "dataserver", dir, dataBin, env, "--host", "127.0.0.1", "--port", "0",
				"--log", filepath.Join(dir, "data_server.log"), "--lock-ttl", tt.dataTTL)
			probe := dataClient{t, data.URL, token, "probe:1"}
			rescuer := dataClient{t, data.URL, token, "rescuer:1"}

			// The fences before the business server locks anything.
			var before [3]uint64
			for _, a := range []int64{1, 2} {
				g := probe.lock(a, 0)
				if g.Fence == nil {
					t.Fatalf("getLock %d: no fence (error %q)", a, g.Error)
				}
				before[a] = *g.Fence
				probe.unlock(a, *g.Fence)
			}

			killed := proctest.Start(t, "businessserver (paused)", dir, businessBin, append(env, "GOBANK_TEST_PAUSE_AT=locked"),
				data.URL, "0", "--host", "127.0.0.1", "--id", "killed:1",
				"--log", filepath.Join(dir, "killed.log"), "--lock-ttl", tt.bsTTL)
			answered := make(chan error, 1)
			go func() {
				status, r, err := call(fmt.Sprintf("%s/transferencia/1/2/%d", killed.URL, valor), tt.clientTk)
				if err == nil {
					err = fmt.Errorf("answered %d %+v", status, r)
				}
				answered <- err
			}()

			// Wait until the paused server holds both locks: a fail-fast
			// getLock by another id_negoc is refused (one granted to the
			// probe is given back at once).
			lockedByOther := func(a int64) bool {
				g := probe.lock(a, 0)
				if g.Fence != nil {
					probe.unlock(a, *g.Fence)
					return false
				}
				return g.ErrorCode != nil && *g.ErrorCode == -1
			}
			proctest.WaitFor(t, 10*time.Second, "the paused business server to hold accounts 2 and 1", func() bool {
				return lockedByOther(2) && lockedByOther(1)
			})
			observed := time.Now()
			select {
			case err := <-answered:
				t.Fatalf("the paused transfer finished: %v", err)
			default:
			}

			killed.Kill()
			if err := <-answered; err == nil {
				t.Error("the killed server's transfer was answered")
			}
			// The locks outlive their holder until the lease ends (checked
			// only while surely inside the lease).
			if time.Since(observed) < tt.lease/2 {
				if g := rescuer.lock(1, 0); g.ErrorCode == nil || *g.ErrorCode != -1 {
					t.Errorf("account 1 not locked right after the kill: error_code %s %q", show(g.ErrorCode), g.Error)
					if g.Fence != nil {
						rescuer.unlock(1, *g.Fence)
					}
				}
			}

			for _, a := range []int64{1, 2} {
				g := rescuer.lock(a, 5*time.Second)
				took := time.Since(observed)
				if g.Fence == nil {
					t.Fatalf("account %d not granted within the 5s wait: error_code %v %q", a, g.ErrorCode, g.Error)
				}
				t.Logf("account %d granted %v after the lock was seen held (lease %v), fence %d (before %d)",
					a, took.Round(time.Millisecond), tt.lease, *g.Fence, before[a])
				if took > tt.lease+margin {
					t.Errorf("account %d granted %v after the kill, want within the lease (%v) + %v", a, took, tt.lease, margin)
				}
				// The killed server's grant came in between.
				if *g.Fence < before[a]+2 {
					t.Errorf("account %d: fence %d, want at least %d", a, *g.Fence, before[a]+2)
				}
				if g.Saldo == nil || *g.Saldo != initial {
					t.Errorf("account %d: saldo %s after the kill, want %d untouched", a, show(g.Saldo), initial)
				}
				rescuer.unlock(a, *g.Fence)
			}

			second := proctest.Start(t, "businessserver", dir, businessBin, env,
				data.URL, "0", "--host", "127.0.0.1", "--id", "second:1",
				"--log", filepath.Join(dir, "second.log"), "--lock-ttl", tt.bsTTL)
			status, r, err := call(fmt.Sprintf("%s/transferencia/1/2/%d", second.URL, valor), tt.clientTk)
			if err != nil || status != http.StatusOK {
				t.Fatalf("transfer on the second business server: %d %v (error_code %s %q)", status, err, show(r.ErrorCode), r.Error)
			}
			if r.SaldoOrig == nil || *r.SaldoOrig != initial-valor || r.SaldoDest == nil || *r.SaldoDest != initial+valor {
				t.Errorf("transfer answered saldo_orig %s, saldo_dest %s, want %d, %d",
					show(r.SaldoOrig), show(r.SaldoDest), initial-valor, initial+valor)
			}

			var total int64
			for a := int64(1); a <= accounts; a++ {
				b := probe.balance(a)
				total += b
				want := int64(initial)
				switch a {
				case 1:
					want -= valor
				case 2:
					want += valor
				}
				if b != want {
					t.Errorf("account %d: balance %d, want %d", a, b, want)
				}
			}
			if total != accounts*initial {
				t.Errorf("total %d, want %d", total, accounts*initial)
			}
			// Nothing is left locked: a fail-fast lock is granted.
			for _, a := range []int64{1, 2} {
				g := probe.lock(a, 0)
				if g.Fence == nil {
					t.Errorf("account %d still locked after the second transfer: error_code %s %q", a, show(g.ErrorCode), g.Error)
					continue
				}
				probe.unlock(a, *g.Fence)
			}
		})
	}
}
