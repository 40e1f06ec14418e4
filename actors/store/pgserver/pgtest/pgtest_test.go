package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store/pgserver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

// TestForTestIsolates: each ForTest is a database of its own on one shared
// server.
func TestForTestIsolates(t *testing.T) {
	a, b := ForTest(t), ForTest(t)
	if a == b {
		t.Fatalf("two calls gave the same DSN %q", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(context.Background())
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(context.Background())
	if _, err := ca.Exec(ctx, "CREATE TABLE mine (v int)"); err != nil {
		t.Fatal(err)
	}
	_, err = cb.Exec(ctx, "SELECT v FROM mine")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" { // undefined_table
		t.Fatalf("the other database sees the table: %v", err)
	}
	if shared == nil || ca.Config().Port != cb.Config().Port {
		t.Errorf("not one shared server: %v, ports %d and %d", shared, ca.Config().Port, cb.Config().Port)
	}
	if _, err := os.Stat(sharedDir); err != nil {
		t.Errorf("shared server's directory: %v", err)
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u:secret@h:5432/old?sslmode=disable", "postgres://u:secret@h:5432/new?sslmode=disable"},
		{"postgresql://u@h:26257?sslmode=require", "postgresql://u@h:26257/new?sslmode=require"},
		{"host=h user=u dbname=old", "host=h user=u dbname=old dbname=new"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "new")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
	if _, err := withDatabase("postgres://u:se%cret@h/x", "new"); err == nil || strings.Contains(err.Error(), "se%cret") {
		t.Errorf("bad URL: %v", err)
	}
}

// TestForTestFromEnv: with GOBANK_POSTGRES_DSN set (in either form), each
// ForTest is a new database on that server, dropped after its test.
func TestForTestFromEnv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, t.TempDir(), nil, pgserver.NoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	admin, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, env := range []struct{ form, dsn string }{
		{"URL", srv.DSN()},
		{"keywords", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", srv.Port(), pgserver.User, pgserver.Database)},
	} {
		var name string
		t.Run(env.form, func(t *testing.T) {
			t.Setenv(pgserver.EnvDSN, env.dsn)
			dsn := ForTest(t)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			if name == pgserver.Database || conn.Config().Port != uint16(srv.Port()) {
				t.Fatalf("ForTest gave database %s on port %d; want a new one on %d", name, conn.Config().Port, srv.Port())
			}
		})
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
			t.Errorf("database %q after its test: %d, %v; want dropped", name, n, err)
		}
	}
}
