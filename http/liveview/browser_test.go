package liveview_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/client"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/liveview"
)

// EnvChromium names the Chromium (or Chrome) binary the browser test runs;
// when unset it is looked for at the standard paths and on PATH.
const EnvChromium = "GOBANK_CHROMIUM"

// EnvScreenshot, when set to a path, makes the browser test write a PNG of
// the page there once the charts hold some history (docs/live-view.png).
const EnvScreenshot = "GOBANK_UI_SCREENSHOT"

// chromium returns the browser to drive. The test needs one: .ci/run
// installs Debian's chromium when it is missing, and the test fails, not
// skips, without it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("$%s=%s: %v", EnvChromium, p, err)
		}
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium found: install it (Debian: apt-get install chromium; .ci/run does) or set $%s", EnvChromium)
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context; both end with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // as root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1600, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first call starts the browser; it must not carry a timeout,
	// which would stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// balanceJS reads account 1's balance as the page shows it, or -1 when
// the row is not there yet.
const balanceJS = `(() => {
  const td = document.querySelector('#accounts tr[data-conta="1"] td.saldo');
  if (!td) return -1;
  const n = parseInt(td.textContent.replace(/[^0-9-]/g, ''), 10);
  return isNaN(n) ? -1 : n;
})()`

// TestBrowserShowsDeposit opens the live view in a real browser, reads
// account 1's balance from the page, deposits through a real business
// server, and sees the page show the new balance within two seconds. It
// also checks that a held lock, its queue and the charts are on the page.
func TestBrowserShowsDeposit(t *testing.T) {
	tab := browser(t)
	data := dataservertest.Start(t, dataservertest.Options{})
	biz := businesstest.Start(t, data, businesstest.Options{})

	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	addr, err := liveview.Serve(ctx, "127.0.0.1:0", liveview.Config{
		Accounts: data.Bank,
		Metrics:  data.Config.Metrics.Prometheus(),
		Title:    "data server " + data.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(biz.URL, data.URL+"/autentica", "ba0f")
	if err != nil {
		t.Fatal(err)
	}

	// Something to look at: account 7 held by an experimenter with one
	// request queued behind, and transfers among the others but account 1,
	// whose balance the test follows.
	if _, err := data.Bank.Do(7, actors.Request{Op: actors.OpLock, Holder: "experiment:9000", TTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancelWait(); wg.Wait() })
	wg.Go(func() {
		_, _ = data.Bank.DoContext(waitCtx, 7, actors.Request{Op: actors.OpLock, Holder: "queued:9001", Wait: time.Minute})
	})
	for w := range 3 {
		wg.Go(func() { load(waitCtx, c, uint64(w)) })
	}
	wg.Go(func() { intrude(waitCtx, data.URL, data.ServerToken) })

	url := "http://" + addr + "/"
	open, cancelOpen := context.WithTimeout(tab, 30*time.Second)
	defer cancelOpen()
	if err := chromedp.Do(open, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	if _, err := chromedp.Run(open, poll(balanceJS+` >= 0`)); err != nil {
		t.Fatalf("%s shows no account 1: %v", url, err)
	}
	shown, err := chromedp.Run(open, chromedp.Evaluate[int64](balanceJS))
	if err != nil {
		t.Fatal(err)
	}
	before, err := data.Bank.Inspect(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if shown != before.Balance {
		t.Fatalf("the page shows account 1 holding %d, the bank %d", shown, before.Balance)
	}

	m, err := c.Deposito(context.Background(), 1, 250)
	if err != nil {
		t.Fatal(err)
	}
	if m.Saldo != shown+250 {
		t.Fatalf("deposit answered balance %d, want %d", m.Saldo, shown+250)
	}
	acked := time.Now()
	within, cancelWithin := context.WithTimeout(tab, 2*time.Second)
	defer cancelWithin()
	want := strconv.FormatInt(m.Saldo, 10)
	if _, err := chromedp.Run(within, poll(balanceJS+` === `+want)); err != nil {
		now, _ := chromedp.Run(tab, chromedp.Evaluate[int64](balanceJS))
		t.Fatalf("within 2 s of the deposit the page still shows %d, want %s: %v", now, want, err)
	}
	t.Logf("the page showed the deposit %v after it was acknowledged", time.Since(acked).Round(time.Millisecond))

	// The held lock and its queue, and charts drawn from the series.
	rowJS := func(sel string) string {
		return `((document.querySelector('#accounts tr[data-conta="7"] ` + sel + `') || {}).textContent || '')`
	}
	later, cancelLater := context.WithTimeout(tab, 20*time.Second)
	defer cancelLater()
	if _, err := chromedp.Run(later, poll(rowJS("td.queue")+` === '1'`)); err != nil {
		t.Errorf("the page does not show one request queued on account 7: %v; /api/accounts: %s", err, get(t, url+"api/accounts"))
	}
	holder, err := chromedp.Run(later, chromedp.Evaluate[string](rowJS("td.holder")))
	if err != nil || holder != "experiment:9000" {
		t.Errorf("account 7 shown held by %q (%v), want experiment:9000", holder, err)
	}
	if _, err := chromedp.Run(later, poll(`document.querySelector('#ch-requests canvas') !== null && document.querySelector('#ch-latency canvas') !== null`)); err != nil {
		t.Errorf("no charts of requests and latency on the page: %v", err)
	}
	page, err := chromedp.Run(later, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, data.ServerToken) {
		t.Error("the page contains the server credential")
	}

	if path := os.Getenv(EnvScreenshot); path != "" {
		screenshot(t, tab, url, path)
	}
}

// loaded are the accounts load moves money between, the first ones the
// most often.
var loaded = []int64{4, 2, 9, 3, 5, 10, 6, 8}

// load makes deposits, withdrawals and transfers among the loaded
// accounts, about 40 a second, until ctx ends, skewed, so that the page
// has heat to rank.
func load(ctx context.Context, c *client.Client, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 42))
	zipf := rand.NewZipf(r, 1.2, 1, uint64(len(loaded)-1))
	pace := time.NewTicker(25 * time.Millisecond)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		a, b := loaded[zipf.Uint64()], loaded[r.IntN(len(loaded))]
		var err error
		switch n := r.IntN(10); {
		case n < 3:
			_, err = c.Deposito(ctx, a, int64(1+r.IntN(50)))
		case n < 4:
			_, err = c.Saque(ctx, a, int64(1+r.IntN(400)))
		case a != b:
			_, err = c.Transferencia(ctx, a, b, int64(1+r.IntN(50)))
		}
		if err != nil && !errors.Is(err, client.ErrInsufficientFunds) && !errors.Is(err, client.ErrLocked) && ctx.Err() == nil {
			// Refusals are part of the picture; anything else ends the load.
			return
		}
	}
}

// intrude asks the data server for account 7's lock, fail-fast, as
// another holder, twice a second until ctx ends: refused with
// LOCKED_ACCOUNT each time, for the refusals chart.
func intrude(ctx context.Context, dataURL, serverToken string) {
	pace := time.NewTicker(500 * time.Millisecond)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, dataURL+"/getLock?id_negoc=intruder:9002&conta=7", nil)
		if err != nil {
			return
		}
		req.Header.Set("token", serverToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// poll waits until the JavaScript expression is true, checking every
// 20 ms, until ctx ends.
func poll(expr string) chromedp.Action[bool] {
	return chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(time.Hour))
}

// screenshot waits until the charts hold half a minute of history, then
// writes a PNG of the whole page to path.
func screenshot(t *testing.T, tab context.Context, url string, path string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var s struct{ T []int64 }
		resp, err := http.Get(url + "api/series")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(s.T) >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("screenshot: only %d seconds of history after 2 minutes", len(s.T))
		}
		time.Sleep(500 * time.Millisecond) // polling a condition, bounded by the deadline
	}
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	// Two more polls of the page after the last sample.
	if _, err := chromedp.Run(ctx, poll(`document.querySelector('#status.live') !== null`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// get returns the body at url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
