// Package businesstest starts a real business server on a loopback port for
// tests, in front of a data server started with dataservertest.
package businesstest

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/http/business"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/oplog"
)

// Options configures Start. The zero value gives the business package's
// defaults.
type Options struct {
	// DataURL overrides the data server's URL (e.g. to point at a closed
	// port); empty means data.URL.
	DataURL string
	// ServerToken overrides the credential; empty means data.ServerToken.
	ServerToken string
	// ID overrides id_negoc; empty means the listener's HOST:PORT.
	ID string
	// LockWait, LockMode, LockOrder and LockTTL are business.Config's.
	LockWait       time.Duration
	LockMode       business.LockMode
	LockOrder      business.LockOrder
	LockTTL        time.Duration
	DataTimeout    time.Duration
	RequestTimeout time.Duration
	AuthCacheTTL   time.Duration
	// Coalesce is business.Config.Coalesce (0: each operation alone).
	Coalesce int
	// Hook is business.Config.TestHook.
	Hook func(stage string)
	// Wrap is business.Config.Wrap: it wraps the server's handler, to fail,
	// delay or garble chosen requests.
	Wrap func(fasthttp.RequestHandler) fasthttp.RequestHandler
	// Now pins the operation log's clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the server's error log; nil discards it.
	Logger *slog.Logger
	// TracerProvider is business.Config.TracerProvider.
	TracerProvider trace.TracerProvider
}

// Server is a running business server.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	Addr   string // 127.0.0.1:PORT, also the default id_negoc
	Server *business.Server

	log    *oplog.Log
	logBuf oplog.Buffer
	stop   sync.Once
}

// Start starts a business server in front of data (which may be nil when
// opt.DataURL and opt.ServerToken are set) and stops it when the test ends.
func Start(t testing.TB, data *dataservertest.Server, opt Options) *Server {
	t.Helper()
	if data != nil {
		if opt.DataURL == "" {
			opt.DataURL = data.URL
		}
		if opt.ServerToken == "" {
			opt.ServerToken = data.ServerToken
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String()}
	s.URL = "http://" + s.Addr
	if opt.ID == "" {
		opt.ID = s.Addr
	}
	s.log = oplog.New(&s.logBuf, oplog.Options{Now: opt.Now})
	bs, err := business.New(business.Config{
		DataURL:        opt.DataURL,
		ServerToken:    opt.ServerToken,
		ID:             opt.ID,
		LockWait:       opt.LockWait,
		LockMode:       opt.LockMode,
		LockOrder:      opt.LockOrder,
		LockTTL:        opt.LockTTL,
		DataTimeout:    opt.DataTimeout,
		RequestTimeout: opt.RequestTimeout,
		AuthCacheTTL:   opt.AuthCacheTTL,
		Coalesce:       opt.Coalesce,
		Log:            s.log,
		Logger:         opt.Logger,
		TestHook:       opt.Hook,
		Wrap:           opt.Wrap,
		TracerProvider: opt.TracerProvider,
	})
	if err != nil {
		_ = ln.Close()
		_ = s.log.Close()
		t.Fatal(err)
	}
	s.Server = bs
	go func() { _ = bs.Serve(ln) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down, waiting for requests in flight. It is safe
// to call more than once. fasthttp counts a connection that has not carried
// a request yet as busy for its first 5 s, and Go's HTTP client leaves such
// spare connections behind under concurrency: close the client's idle
// connections before Stop runs (register that cleanup after Start), or
// Stop may take up to 5 s.
func (s *Server) Stop() {
	s.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Server.Shutdown(ctx)
		_ = s.log.Close()
	})
}

// LogText flushes the operation log and returns everything written so far.
func (s *Server) LogText() string {
	_ = s.log.Flush()
	return s.logBuf.String()
}

// LogLines returns the operation log's lines.
func (s *Server) LogLines() []string {
	text := strings.TrimSuffix(s.LogText(), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}
