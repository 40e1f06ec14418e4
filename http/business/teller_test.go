package business

import (
	"testing"
	"time"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/tellertest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// TestTellerOverHTTP runs the orchestration's table of tests (the same the
// in-process accounts pass) by a Teller over the data client, against a
// real data server on loopback.
func TestTellerOverHTTP(t *testing.T) {
	tellertest.Run(t, func(t *testing.T, accounts int, initial int64) tellertest.Bind {
		ds := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
		return func(holder string, lease time.Duration) teller.Accounts {
			c, err := NewDataClient(DataClientConfig{URL: ds.URL, ServerToken: ds.ServerToken, ID: holder, LockTTL: lease})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.CloseIdleConnections)
			return dataAccounts{c}
		}
	})
}
