// Package pgtest gives tests a fresh PostgreSQL database each.
//
// A package whose tests call ForTest should run them through Main (or Run,
// to combine it with other helpers), so that its test binary starts one
// private server (lazily, at the first ForTest) and stops it, removing its
// directory, when the tests are done:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Each ForTest then creates a new database on that server (CREATE
// DATABASE, tens of milliseconds), so tests are isolated from each other.
// Without Main, ForTest still works, but starts a server per test (a
// second or more each) in the test's temporary directory, because nothing
// else would know when to stop a shared one. Should the test binary die
// without cleaning up, its servers are told to stop by the kernel (see
// pgserver.Start); only a shared server's directory is left in the
// temporary directory then.
//
// With GOBANK_POSTGRES_DSN set, no server is started: ForTest creates each
// database on that server and drops it after the test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/jackc/pgx/v5/pgconn"
)

// startTimeout bounds a server's start, initdb included.
const startTimeout = 2 * time.Minute

var (
	inMain atomic.Bool

	sharedOnce sync.Once
	shared     *pgserver.Server
	sharedDir  string
	sharedErr  error

	hintOnce sync.Once
	seq      atomic.Int64
)

// Main runs the tests of m, then stops the shared server if ForTest
// started one and removes its directory, and exits with the tests' status.
// Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// M is what Run runs: a *testing.M, or a RunFunc.
type M interface{ Run() int }

// RunFunc makes a function an M.
type RunFunc func() int

// Run calls f.
func (f RunFunc) Run() int { return f() }

// Run is Main without the exit: it runs m, cleans up as Main does, and
// returns the status to exit with. It composes with other helpers of a
// TestMain, e.g. os.Exit(pgtest.Run(pgtest.RunFunc(func() int { return
// other.Run(m) }))).
func Run(m M) int {
	inMain.Store(true)
	defer inMain.Store(false)
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			code = max(code, 1)
		}
	}
	if sharedDir != "" {
		if err := os.RemoveAll(sharedDir); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			code = max(code, 1)
		}
	}
	return code
}

// ForTest returns the DSN of a database of its own for t, empty, on a
// server started as the package documentation says (or the one
// GOBANK_POSTGRES_DSN names). It fails t if there is no server to be had,
// e.g. when PostgreSQL is not installed (pgserver.ErrNotInstalled).
// Close every connection to the database before t's cleanups end: the
// database is dropped then (on a server of GOBANK_POSTGRES_DSN).
func ForTest(t testing.TB) string {
	t.Helper()
	if dsn, ok := pgserver.FromEnv(); ok {
		return createDatabase(t, dsn, true)
	}
	if !inMain.Load() {
		hintOnce.Do(func() {
			t.Log("pgtest: a PostgreSQL server per test; run the tests through pgtest.Main to share one")
		})
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		srv, err := pgserver.Start(ctx, t.TempDir(), nil, pgserver.NoSync())
		if err != nil {
			t.Fatalf("%v (or set %s to use an existing server)", err, pgserver.EnvDSN)
		}
		t.Cleanup(func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
		return srv.DSN()
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "gobank-pgtest-")
		if sharedErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared, sharedErr = pgserver.Start(ctx, sharedDir, slog.New(slog.DiscardHandler), pgserver.NoSync())
	})
	if sharedErr != nil {
		t.Fatalf("%v (or set %s to use an existing server)", sharedErr, pgserver.EnvDSN)
	}
	// The private server is removed whole at the end: no need to drop.
	return createDatabase(t, shared.DSN(), false)
}

// createDatabase creates a database with a new name on the server of dsn
// and returns dsn naming it instead.
func createDatabase(t testing.TB, dsn string, drop bool) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	// Unique across the test binaries sharing a server, and recognizable
	// should one be left behind.
	name := fmt.Sprintf("gobank_test_%d_%d_%s", os.Getpid(), seq.Add(1), hex.EncodeToString(b[:]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name).ReadAll(); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	if drop {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := pgconn.Connect(ctx, dsn)
			if err == nil {
				_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name).ReadAll()
				conn.Close(ctx)
			}
			if err != nil {
				// Left behind, not wrong: the test's result stands.
				t.Logf("pgtest: dropping database %s: %v", name, err)
			}
		})
	}
	out, err := withDatabase(dsn, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return out
}

// withDatabase returns dsn (a URL or keyword=value pairs) naming database
// name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Not err: its text would show the DSN, password included.
			return "", fmt.Errorf("the DSN does not parse as a URL")
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword=value form the last setting of a keyword wins.
	return dsn + " dbname=" + name, nil
}
