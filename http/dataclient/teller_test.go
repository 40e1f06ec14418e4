package dataclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/actors/teller/tellertest"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// TestTeller runs the orchestration's table of tests (the one the
// in-process accounts pass) by a Teller over the data client, against a
// real data server on loopback.
func TestTeller(t *testing.T) {
	tellertest.Run(t, func(t *testing.T, accounts int, initial int64) tellertest.Bind {
		ds := dataservertest.Start(t, dataservertest.Options{Accounts: accounts, InitialBalance: initial})
		return func(holder string, lease time.Duration) teller.Accounts {
			c, err := dataclient.New(dataclient.Config{URL: ds.URL, ServerToken: ds.ServerToken, ID: holder, LockTTL: lease})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.CloseIdleConnections)
			return inspected{c, ds}
		}
	})
}

// inspected is the data client that can also tell how many lock requests
// wait on an account, as the data server's bank sees it, for tellertest.
type inspected struct {
	*dataclient.Client
	ds *dataservertest.Server
}

func (i inspected) Waiting(_ context.Context, id int64) (int, error) {
	r, err := i.ds.Bank.Do(id, actors.Request{Op: actors.OpRead})
	return r.Waiting, err
}
