package experiment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/benchmarks/txnload"
	"github.com/bank/gobank/http/auth"
	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataserver"
	"github.com/bank/gobank/http/metrics"
)

// cluster is one fresh bank: the account actors, a data server and the
// business servers in front of it, all in this process on loopback ports.
type cluster struct {
	bank     *actors.Bank
	store    *store.Pebble // nil: balances in memory
	storeDir string        // the store's temporary directory, removed by stop
	data     *dataserver.Server
	dataDone chan error
	biz      []*business.Server
	bizDone  []chan error
	urls     []string // business servers' base URLs
	dataURL  string
	token    string            // the server credential
	metrics  *metrics.Registry // the data server's
	// deadlocks times the cycles the bank's detector broke.
	deadlocks *txnload.DeadlockTimes
}

// shutdownTimeout bounds each server's graceful shutdown.
const shutdownTimeout = 10 * time.Second

// serverConfigs returns the data server's and the business servers'
// configuration for cell c (ID and the URLs are filled in by startCluster).
func serverConfigs(s Settings, c Cell) (dataserver.Config, business.Config, error) {
	dc := dataserver.Config{}
	bc := business.Config{LockOrder: c.Order.business(), LockWait: s.LockWait}
	d, ok := c.Policy.def()
	if !ok {
		return dc, bc, fmt.Errorf("unknown policy %q", c.Policy)
	}
	d.configure(s, &dc, &bc)
	return dc, bc, nil
}

// startCluster starts a fresh bank for cell c. On error everything started
// so far is stopped.
func startCluster(s Settings, c Cell) (cl *cluster, err error) {
	cl = &cluster{}
	defer func() {
		if err != nil {
			cl.stop()
			cl = nil
		}
	}()
	cl.deadlocks = txnload.NewDeadlockTimes()
	bcfg := actors.Config{Accounts: s.Accounts, InitialBalance: s.InitialBalance, Synchronous: true,
		DeadlockDetection: true, Observer: cl.deadlocks, EarlyLockRelease: c.Store.earlyLockRelease()}
	if c.Store.durable() {
		if cl.storeDir, err = os.MkdirTemp("", "gobank-experiment-"); err != nil {
			return cl, err
		}
		if cl.store, err = store.OpenPebble(cl.storeDir, nil); err != nil {
			return cl, err
		}
		bcfg.Store = cl.store
	}
	cl.bank, err = actors.New(bcfg)
	if err != nil {
		return cl, err
	}
	tokens, err := auth.NewTokens(auth.DefaultClientTokens...)
	if err != nil {
		return cl, err
	}
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return cl, err
	}
	serverToken := hex.EncodeToString(secret[:])

	dc, bc, err := serverConfigs(s, c)
	if err != nil {
		return cl, err
	}
	cl.metrics = metrics.NewRegistry()
	dc.Metrics = cl.metrics
	dc.Accounts = cl.bank
	dc.ClientTokens = tokens
	dc.ServerToken = serverToken
	if cl.store != nil {
		dc.Records = cl.store
	}
	cl.data, err = dataserver.New(dc)
	if err != nil {
		return cl, err
	}
	dataURL, done, err := serve(cl.data.Serve)
	cl.dataURL, cl.token = dataURL, serverToken
	cl.dataDone = done
	if err != nil {
		return cl, fmt.Errorf("data server: %w", err)
	}

	for i := range c.Servers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return cl, fmt.Errorf("business server %d: %w", i+1, err)
		}
		cfg := bc
		cfg.DataURL = dataURL
		cfg.ServerToken = serverToken
		cfg.ID = ln.Addr().String() // unique per data server: the port differs
		bs, err := business.New(cfg)
		if err != nil {
			_ = ln.Close()
			return cl, fmt.Errorf("business server %d: %w", i+1, err)
		}
		done := make(chan error, 1)
		go func() { done <- bs.Serve(ln) }()
		cl.biz = append(cl.biz, bs)
		cl.bizDone = append(cl.bizDone, done)
		url := "http://" + ln.Addr().String()
		if err := waitServing(url); err != nil {
			return cl, fmt.Errorf("business server %d: %w", i+1, err)
		}
		cl.urls = append(cl.urls, url)
	}
	return cl, nil
}

// serve listens on a fresh loopback port, runs serveFn on it and returns
// once the server answers /status.
func serve(serveFn func(net.Listener) error) (url string, done chan error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done = make(chan error, 1)
	go func() { done <- serveFn(ln) }()
	url = "http://" + ln.Addr().String()
	return url, done, waitServing(url)
}

// waitServing returns once url/status answers 200: a Shutdown before Serve
// registered its listener would return at once and leave it serving.
func waitServing(url string) error {
	status, _, err := fasthttp.GetTimeout(nil, url+"/status", 10*time.Second)
	if err != nil {
		return err
	}
	if status != fasthttp.StatusOK {
		return fmt.Errorf("%s/status answered %d", url, status)
	}
	return nil
}

// stop shuts the business servers down, then the data server, then the
// actors, waiting for each Serve to return. It is safe on a partly
// started cluster.
func (cl *cluster) stop() error {
	var errs []error
	for i, bs := range cl.biz {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := bs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("business server %d: shutdown: %w", i+1, err))
		}
		cancel()
		<-cl.bizDone[i]
	}
	if cl.data != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := cl.data.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("data server: shutdown: %w", err))
		}
		cancel()
		if cl.dataDone != nil {
			<-cl.dataDone
		}
	}
	if cl.bank != nil {
		cl.bank.Close()
	}
	if cl.store != nil {
		if err := cl.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	if cl.storeDir != "" {
		if err := os.RemoveAll(cl.storeDir); err != nil {
			errs = append(errs, err)
		}
	}
	cl.biz, cl.bizDone, cl.data, cl.bank, cl.store, cl.storeDir = nil, nil, nil, nil, nil, ""
	return errors.Join(errs...)
}

// lockWaitFamily is the data server's histogram of lock waits (from a
// getLock's or getLocks' arrival to its grant, granted locks only).
const lockWaitFamily = "gobank_data_lock_wait_seconds"

// lockWaits returns how many locks the data server granted and their
// summed wait.
func (cl *cluster) lockWaits() (n int64, total time.Duration, err error) {
	fams, err := cl.metrics.Prometheus().Gather()
	if err != nil {
		return 0, 0, err
	}
	for _, f := range fams {
		if f.GetName() != lockWaitFamily {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			n += int64(h.GetSampleCount())
			total += time.Duration(h.GetSampleSum() * float64(time.Second))
		}
		return n, total, nil
	}
	return 0, 0, fmt.Errorf("the data server has no %s series", lockWaitFamily)
}
