package pgtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

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
