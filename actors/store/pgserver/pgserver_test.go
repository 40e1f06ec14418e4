package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// childEnv makes the test binary a process that starts a server in the
// directory it names, prints the DSN and waits to be killed.
const childEnv = "GOBANK_PGSERVER_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		s, err := Start(context.Background(), dir, nil, NoSync())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(s.DSN())
		select {}
	}
	os.Exit(m.Run())
}

// TestServerDiesWithItsParent: a process killed without calling Stop leaves
// no server behind; it shuts down cleanly (its pid file goes).
func TestServerDiesWithItsParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	child := osexec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+dir)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("child: %v", err)
	}
	dsn := strings.TrimSpace(line)
	exec1(t, dsn, "SELECT 1")
	child.Process.Kill()
	child.Wait()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := os.Stat(filepath.Join(dir, "postmaster.pid"))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			// Not left running for the next test: its pid is the pid
			// file's first line.
			if b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil {
					syscall.Kill(pid, syscall.SIGQUIT)
				}
			}
			t.Fatalf("postgres still running a minute after its parent died (postmaster.pid: %v)", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("the orphaned server still takes connections")
	}
}

func startT(t *testing.T, dir string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, dir, nil, NoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func exec1(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestStartStopRestart: a server takes connections, stops (and then takes
// none), and a new one on the same directory has the data.
func TestStartStopRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	s := startT(t, dir)
	if s.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", s.Dir(), dir)
	}
	if !strings.Contains(s.DSN(), "@127.0.0.1:") {
		t.Errorf("DSN() = %q: not on 127.0.0.1", s.DSN())
	}
	exec1(t, s.DSN(), "CREATE TABLE kept (v text)")
	exec1(t, s.DSN(), "INSERT INTO kept VALUES ($1)", "survives")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	default:
		t.Fatal("Stop returned before postgres exited")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, s.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatal("a stopped server took a connection")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	s2 := startT(t, dir)
	conn, err := pgx.Connect(ctx, s2.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "survives" {
		t.Fatalf("after a restart: %q, %v; want survives", v, err)
	}
}

// TestTwoServers: two servers run side by side on their own ports.
func TestTwoServers(t *testing.T) {
	a := startT(t, filepath.Join(t.TempDir(), "a"))
	b := startT(t, filepath.Join(t.TempDir(), "b"))
	if a.Port() == b.Port() {
		t.Fatalf("both on port %d", a.Port())
	}
	exec1(t, a.DSN(), "CREATE TABLE only_a (v int)")
	exec1(t, b.DSN(), "CREATE TABLE only_a (v int)") // would fail on a's server
}

// TestStartRefusesForeignDir: a non-empty directory that is not a cluster
// is left alone, with an error.
func TestStartRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, dir, nil)
	if err == nil {
		s.Stop()
		t.Fatal("started in a directory holding other files")
	}
	if !strings.Contains(err.Error(), "no PostgreSQL cluster") {
		t.Errorf("error %q does not say why", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "precious"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
		t.Errorf("the directory's file now belongs to uid %d", uid)
	}
}

func fakeBin(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBinDir(t *testing.T) {
	notFound := func(string) (string, error) { return "", errors.New("not in PATH") }
	tests := []struct {
		name     string
		setup    func(t *testing.T, root string) binLocator
		want     string   // relative to root; "" for ErrNotInstalled
		mentions []string // in the error
	}{
		{
			name: "nothing installed",
			setup: func(t *testing.T, root string) binLocator {
				return binLocator{pgConfig: filepath.Join(root, "no-pg_config"), glob: filepath.Join(root, "lib/*/bin"), lookPath: notFound}
			},
			mentions: []string{"initdb", "postgres", "apt-get install postgresql", "PATH"},
		},
		{
			name: "client only: pg_config's bindir lacks the server",
			setup: func(t *testing.T, root string) binLocator {
				fakeBin(t, filepath.Join(root, "client"), "psql")
				pgConfig := filepath.Join(root, "pg_config")
				if err := os.WriteFile(pgConfig, []byte("#!/bin/sh\necho "+filepath.Join(root, "client")+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				fakeBin(t, filepath.Join(root, "lib/15/bin"), "initdb") // no postgres
				return binLocator{pgConfig: pgConfig, glob: filepath.Join(root, "lib/*/bin"), lookPath: notFound}
			},
			mentions: []string{"lacks initdb, postgres", "apt-get install postgresql"},
		},
		{
			name: "pg_config's bindir",
			setup: func(t *testing.T, root string) binLocator {
				fakeBin(t, filepath.Join(root, "server"), "initdb", "postgres")
				pgConfig := filepath.Join(root, "pg_config")
				if err := os.WriteFile(pgConfig, []byte("#!/bin/sh\necho "+filepath.Join(root, "server")+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				fakeBin(t, filepath.Join(root, "lib/16/bin"), "initdb", "postgres")
				return binLocator{pgConfig: pgConfig, glob: filepath.Join(root, "lib/*/bin"), lookPath: notFound}
			},
			want: "server",
		},
		{
			name: "highest version, numerically",
			setup: func(t *testing.T, root string) binLocator {
				for _, v := range []string{"9.6", "15", "10"} {
					fakeBin(t, filepath.Join(root, "lib", v, "bin"), "initdb", "postgres")
				}
				fakeBin(t, filepath.Join(root, "lib/17/bin"), "initdb") // incomplete: skipped
				return binLocator{pgConfig: filepath.Join(root, "no-pg_config"), glob: filepath.Join(root, "lib/*/bin"), lookPath: notFound}
			},
			want: "lib/15/bin",
		},
		{
			name: "PATH",
			setup: func(t *testing.T, root string) binLocator {
				fakeBin(t, filepath.Join(root, "bin"), "initdb", "postgres")
				return binLocator{pgConfig: filepath.Join(root, "no-pg_config"), glob: filepath.Join(root, "lib/*/bin"),
					lookPath: func(n string) (string, error) { return filepath.Join(root, "bin", n), nil }}
			},
			want: "bin",
		},
		{
			name: "PATH with only initdb",
			setup: func(t *testing.T, root string) binLocator {
				return binLocator{pgConfig: filepath.Join(root, "no-pg_config"), glob: filepath.Join(root, "lib/*/bin"),
					lookPath: func(n string) (string, error) {
						if n == "initdb" {
							return "/x/initdb", nil
						}
						return "", errors.New("not found")
					}}
			},
			mentions: []string{"PATH lacks postgres"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir, err := tt.setup(t, root).findBinDir()
			if tt.want != "" {
				if err != nil || dir != filepath.Join(root, tt.want) {
					t.Fatalf("findBinDir() = %q, %v; want %q", dir, err, filepath.Join(root, tt.want))
				}
				return
			}
			if !errors.Is(err, ErrNotInstalled) {
				t.Fatalf("findBinDir() = %q, %v; want ErrNotInstalled", dir, err)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestStartNotInstalled: Start reports ErrNotInstalled, and creates
// nothing, when the binaries are not to be found.
func TestStartNotInstalled(t *testing.T) {
	saved := locator
	t.Cleanup(func() { locator = saved })
	root := t.TempDir()
	locator = binLocator{pgConfig: filepath.Join(root, "no-pg_config"), glob: filepath.Join(root, "*/bin"),
		lookPath: func(string) (string, error) { return "", errors.New("not in PATH") }}
	dir := filepath.Join(root, "data")
	_, err := Start(context.Background(), dir, nil)
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start: %v; want ErrNotInstalled", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("Start created %s anyway (%v)", dir, serr)
	}
}

func TestFromEnv(t *testing.T) {
	for _, v := range []string{"", "postgres://u@db:26257/bank"} {
		t.Setenv(EnvDSN, v)
		dsn, ok := FromEnv()
		if dsn != v || ok != (v != "") {
			t.Errorf("with %q: FromEnv() = %q, %v", v, dsn, ok)
		}
	}
}

// TestStartCutShort: a start that ctx ends at any point (here, most likely
// during initdb) leaves nothing running, and a directory a later start can
// use.
func TestStartCutShort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	for _, d := range []time.Duration{0, 200 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		s, err := Start(ctx, dir, nil, NoSync())
		cancel()
		if err == nil {
			s.Stop()
			continue // fast enough after all: still a valid outcome
		}
		if errors.Is(err, ErrNotInstalled) {
			t.Fatal(err)
		}
	}
	s := startT(t, dir)
	exec1(t, s.DSN(), "SELECT 1")
}

// TestGrantSearch: the directories above the data directory that another
// user cannot pass through gain o+x, and nothing else: not read
// permission, not on those it can pass already, not losing setgid.
func TestGrantSearch(t *testing.T) {
	root := t.TempDir()
	stranger := &syscall.Credential{Uid: 65534, Gid: 65534} // not the owner, not the group
	tests := []struct {
		name       string
		mode, want os.FileMode
	}{
		{"closed", 0o700, 0o701},
		{"group only, setgid", 0o750 | os.ModeSetgid, 0o751 | os.ModeSetgid},
		{"open already", 0o755, 0o755},
		{"search only already", 0o711, 0o711},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := filepath.Join(root, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.Mkdir(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(parent, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := grantSearch(filepath.Join(parent, "pg"), stranger, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(parent)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (os.ModePerm | os.ModeSetgid); got != tt.want {
				t.Errorf("mode %v, want %v", got, tt.want)
			}
		})
	}
	// The owner passes by its own bit: nothing to grant.
	parent := filepath.Join(root, "own")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	me := &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}
	if err := grantSearch(filepath.Join(parent, "pg"), me, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(parent); fi.Mode().Perm() != 0o700 {
		t.Errorf("owner's directory: mode %v, want 0700", fi.Mode().Perm())
	}
}
