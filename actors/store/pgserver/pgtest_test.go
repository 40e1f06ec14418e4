package pgserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestForTestWithoutMain: this package does not run its tests through
// pgtest.Main, so ForTest starts a server for the test alone (stopped by
// its cleanup) and the database works.
func TestForTestWithoutMain(t *testing.T) {
	dsn := pgtest.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT 40 + 2: %d, %v", n, err)
	}
}
