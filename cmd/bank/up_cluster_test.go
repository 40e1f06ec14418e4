package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bank/gobank/actors/cluster/etcdtest"
	"github.com/bank/gobank/cmd/internal/proctest"
)

// TestUpCluster runs "bank up --nodes 3": three data-server members of a
// cluster over a private PostgreSQL server that bank up starts, and three
// business servers, each in front of a different member. The client
// commands work through each of them, SIGTERM stops everything (the
// PostgreSQL server included) with exit 0, and a second bank up on the
// same --dir finds the balances again.
func TestUpCluster(t *testing.T) {
	tmp := t.TempDir()
	ports, clusterPort := proctest.ClusterPorts(t)
	cluster := []string{"--cluster-port", strconv.Itoa(clusterPort)}
	up := startUpIn(t, tmp, ports, 3, cluster...)
	env := testEnv(up.home)
	srv := func(i int) []string { return []string{"--server", up.url(up.business[i]), "--auth", up.auth()} }
	members := []int{up.dataPort, up.dataPort + 10, up.dataPort + 20}

	banner := up.stdout.String()
	for _, want := range []string{up.url(members[1]), up.url(members[2]), "PostgreSQL in " + filepath.Join(up.dir, "postgres")} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner does not contain %q:\n%s", want, banner)
		}
	}
	steps := []struct {
		args []string
		want string
	}{
		{append([]string{"deposito", "2", "5000"}, srv(0)...), "deposito conta=2 valor=5000 saldo=6000\n"},
		{append([]string{"transferencia", "2", "1", "2000"}, srv(1)...), "transferencia conta_orig=2 conta_dest=1 valor=2000 saldo_orig=4000 saldo_dest=3000\n"},
		{append([]string{"saque", "1", "1000"}, srv(2)...), "saque conta=1 valor=1000 saldo=2000\n"},
		{append([]string{"saldo", "2"}, srv(2)...), "saldo conta=2 saldo=4000\n"},
	}
	for _, s := range steps {
		code, stdout, stderr := runBank(t, env, s.args...)
		if code != 0 || stdout != s.want {
			t.Errorf("bank %s: exit %d, stdout %q, stderr %q; want 0, %q", strings.Join(s.args, " "), code, stdout, stderr, s.want)
		}
	}

	stop := func(up *upProcess) {
		t.Helper()
		if err := up.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := up.waitExit(t, 60*time.Second); err != nil {
			t.Errorf("bank up --nodes 3 after SIGTERM: %v\nstderr:\n%s", err, up.stderr)
		}
		for _, port := range append(members, up.business...) {
			assertRefused(t, port)
		}
		for _, pid := range up.childPIDs {
			assertGone(t, pid)
		}
		if !strings.Contains(up.stderr.String(), "PostgreSQL stopped") {
			t.Errorf("bank up did not report stopping PostgreSQL:\n%s", up.stderr)
		}
		if _, err := os.Stat(filepath.Join(up.dir, "postgres", "postmaster.pid")); !os.IsNotExist(err) {
			t.Errorf("PostgreSQL still running after bank up exited (postmaster.pid: %v)", err)
		}
	}
	stop(up)

	// The accounts live in PostgreSQL in --dir: a new cluster finds them.
	again := startUpIn(t, tmp, ports, 3, cluster...)
	for i, want := range map[int]string{1: "saldo conta=1 saldo=2000\n", 2: "saldo conta=2 saldo=4000\n"} {
		code, stdout, stderr := runBank(t, env, append([]string{"saldo", strconv.Itoa(i)}, srv(i)...)...)
		if code != 0 || stdout != want {
			t.Errorf("after restart, bank saldo %d: exit %d, stdout %q, stderr %q; want %q", i, code, stdout, stderr, want)
		}
	}
	stop(again)
}

// TestUpClusterEtcd runs "bank up --nodes 3 --etcd URL" against a real
// etcd server: the members find each other there (each sees three), the
// client commands work through business servers in front of different
// members, and SIGTERM stops everything with exit 0.
func TestUpClusterEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	ports, clusterPort := proctest.ClusterPorts(t)
	up := startUpIn(t, t.TempDir(), ports, 3, "--cluster-port", strconv.Itoa(clusterPort), "--etcd", srv.Endpoint)
	env := testEnv(up.home)
	srvArgs := func(i int) []string { return []string{"--server", up.url(up.business[i]), "--auth", up.auth()} }
	for _, port := range []int{up.dataPort, up.dataPort + 10, up.dataPort + 20} {
		proctest.WaitFor(t, 20*time.Second, "member on port "+strconv.Itoa(port)+" to see 3 members in etcd", func() bool {
			resp, err := http.Get(up.url(port) + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return err == nil && strings.Contains(string(body), "\ngobank_cluster_members 3\n")
		})
	}
	for _, s := range []struct {
		args []string
		want string
	}{
		{append([]string{"deposito", "2", "5000"}, srvArgs(0)...), "deposito conta=2 valor=5000 saldo=6000\n"},
		{append([]string{"transferencia", "2", "1", "2000"}, srvArgs(1)...), "transferencia conta_orig=2 conta_dest=1 valor=2000 saldo_orig=4000 saldo_dest=3000\n"},
		{append([]string{"saldo", "1"}, srvArgs(2)...), "saldo conta=1 saldo=3000\n"},
	} {
		code, stdout, stderr := runBank(t, env, s.args...)
		if code != 0 || stdout != s.want {
			t.Errorf("bank %s: exit %d, stdout %q, stderr %q; want 0, %q", strings.Join(s.args, " "), code, stdout, stderr, s.want)
		}
	}
	if err := up.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := up.waitExit(t, 60*time.Second); err != nil {
		t.Errorf("bank up --nodes 3 --etcd after SIGTERM: %v\nstderr:\n%s", err, up.stderr)
	}
}
