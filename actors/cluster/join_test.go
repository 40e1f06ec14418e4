package cluster

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bank/gobank/actors/store"
	"github.com/bank/gobank/actors/store/pgserver/pgtest"
	"github.com/bank/gobank/http/freeport"
)

// A member whose cluster port is taken fails to join with an error, and
// leaves nothing half started behind to panic.
func TestJoinOnATakenPort(t *testing.T) {
	st, err := store.OpenPostgres(pgtest.ForTest(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	manage := ports[0]
	b, err := Join(Config{Accounts: 2, Store: st, Host: "127.0.0.1", Port: port,
		Provider: Automanaged(manage, []string{"127.0.0.1:" + strconv.Itoa(manage)}, 100*time.Millisecond)})
	if err == nil {
		b.Close()
		t.Fatal("joined on a taken port")
	}
	if !strings.Contains(err.Error(), "starting member") {
		t.Errorf("error %q does not say the member could not start", err)
	}
}
