// Package pgserver runs a private PostgreSQL server: a cluster of its own
// in a directory, listening on 127.0.0.1 only, for the bank's data servers
// (`bank up --nodes 3`) and for tests of the PostgreSQL store.
//
// It needs PostgreSQL's server binaries (initdb and postgres; on Debian the
// package postgresql). Set GOBANK_POSTGRES_DSN to use an existing server
// instead (see FromEnv), for instance a CockroachDB or YugabyteDB one.
package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bank/gobank/http/freeport"
)

// EnvDSN names the environment variable that points tests and tools at an
// existing server instead of a private one.
const EnvDSN = "GOBANK_POSTGRES_DSN"

// FromEnv returns the DSN in GOBANK_POSTGRES_DSN, if it is set: a server
// (PostgreSQL, CockroachDB, YugabyteDB) to use instead of starting one.
func FromEnv() (dsn string, ok bool) {
	dsn = os.Getenv(EnvDSN)
	return dsn, dsn != ""
}

// ErrNotInstalled reports that PostgreSQL's server binaries were not found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found")

// User and Database name the bank's role (the cluster's superuser) and
// database in a private server.
const (
	User     = "gobank"
	Database = "gobank"
)

// required are the binaries Start runs. pg_ctl is not among them: Start
// supervises postgres itself, so that it is a child of this process and is
// told to stop when this process dies.
var required = []string{"initdb", "postgres"}

// locator is where Start looks for the binaries; a variable so that a test
// can make the search fail.
var locator = binLocator{
	pgConfig: "pg_config",
	glob:     "/usr/lib/postgresql/*/bin",
	lookPath: exec.LookPath,
}

type binLocator struct {
	pgConfig string // the pg_config command, run with --bindir
	glob     string // directories of installed versions; the highest wins
	lookPath func(string) (string, error)
}

// findBinDir returns the directory holding every required binary: pg_config
// --bindir, then the highest /usr/lib/postgresql/*/bin, then PATH. Each
// candidate must hold all of them, so that initdb and postgres are of one
// version (pg_config may come from a client-only package).
func (l binLocator) findBinDir() (string, error) {
	var tried []string
	if out, err := exec.Command(l.pgConfig, "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		missing := missingIn(dir)
		if len(missing) == 0 {
			return dir, nil
		}
		tried = append(tried, fmt.Sprintf("%s --bindir (%s) lacks %s", l.pgConfig, dir, strings.Join(missing, ", ")))
	} else {
		tried = append(tried, fmt.Sprintf("no %s", l.pgConfig))
	}
	dirs, _ := filepath.Glob(l.glob)
	sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[i], dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if len(missingIn(dirs[i])) == 0 {
			return dirs[i], nil
		}
	}
	if len(dirs) == 0 {
		tried = append(tried, fmt.Sprintf("nothing matches %s", l.glob))
	} else {
		tried = append(tried, fmt.Sprintf("no directory matching %s holds %s", l.glob, strings.Join(required, " and ")))
	}
	var dir string
	var missing []string
	for _, name := range required {
		p, err := l.lookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		if d := filepath.Dir(p); dir == "" {
			dir = d
		} else if d != dir {
			// Two installations: postgres must be initdb's version.
			missing = append(missing, name+" (beside "+filepath.Join(dir, required[0])+")")
		}
	}
	if len(missing) == 0 {
		return dir, nil
	}
	tried = append(tried, fmt.Sprintf("PATH lacks %s", strings.Join(missing, ", ")))
	return "", fmt.Errorf("pgserver: %w: need %s; %s; install them (Debian: apt-get install postgresql)",
		ErrNotInstalled, strings.Join(required, " and "), strings.Join(tried, "; "))
}

func missingIn(dir string) []string {
	var missing []string
	for _, name := range required {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// versionLess orders .../postgresql/VERSION/bin paths by version, so that
// 15 sorts above 9.6.
func versionLess(a, b string) bool {
	va, vb := versionOf(a), versionOf(b)
	for i := 0; i < len(va) && i < len(vb); i++ {
		if va[i] != vb[i] {
			return va[i] < vb[i]
		}
	}
	if len(va) != len(vb) {
		return len(va) < len(vb)
	}
	return a < b
}

func versionOf(binDir string) []int {
	var v []int
	for _, part := range strings.Split(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return v
		}
		v = append(v, n)
	}
	return v
}

// Server is a running private PostgreSQL server.
type Server struct {
	dir     string
	port    int
	logger  *slog.Logger
	cmd     *exec.Cmd
	exited  chan struct{} // closed when postgres has exited
	waitErr error         // postgres's exit status, once exited is closed

	stopOnce sync.Once
	stopErr  error
}

// DSN returns the URL of the bank's database on the server.
func (s *Server) DSN() string { return s.DSNFor(Database) }

// DSNFor returns the URL of database name on the server.
func (s *Server) DSNFor(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.port, name)
}

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Port returns the TCP port the server listens on (on 127.0.0.1).
func (s *Server) Port() int { return s.port }

// An Option changes how Start runs a server.
type Option func(*options)

type options struct {
	settings [][2]string // postgres -c options
}

// NoSync turns off fsync, full-page writes and synchronous commit: for
// tests, which gain seconds, not for data that must survive a crash of the
// machine (a clean Stop still keeps everything).
func NoSync() Option {
	return func(o *options) {
		o.settings = append(o.settings,
			[2]string{"fsync", "off"}, [2]string{"full_page_writes", "off"}, [2]string{"synchronous_commit", "off"})
	}
}

// Start starts a PostgreSQL server with its data in dir, creating the
// cluster there if dir holds none yet (so the data survives a Stop and a
// later Start on the same dir). It listens on 127.0.0.1 on a free port and
// on a unix socket in dir, trusts every connection (loopback only: the
// server is private), and has a superuser and a database both named gobank.
//
// ctx bounds the start only: the server runs until Stop, and is also told
// to stop (fast shutdown) if this process dies first. (Linux tells it when
// the thread that started it ends, which in Go is the process's end,
// unless Start ran on a goroutine locked to its thread that then exited
// without unlocking it.)
//
// PostgreSQL refuses to run as root: as root, Start runs it as the user
// postgres, makes dir its owner, and grants search permission (o+x, not
// read) on the directories above dir that deny it, so that postgres can
// reach dir; each such grant is logged.
func Start(ctx context.Context, dir string, logger *slog.Logger, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := locator.findBinDir()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	_, err = os.Stat(filepath.Join(dir, "PG_VERSION"))
	fresh := errors.Is(err, fs.ErrNotExist)
	if err != nil && !fresh {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if fresh {
		// Checked before handing dir over: files that are not a cluster
		// are someone else's, and keep their owner.
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("pgserver: %s holds files but no PostgreSQL cluster: give an empty or new directory", dir)
		}
	}
	if cred != nil {
		if err := handOver(dir, cred, logger); err != nil {
			return nil, err
		}
	}
	if fresh {
		if err := initdb(ctx, bin, dir, cred, logger); err != nil {
			return nil, err
		}
	} else {
		logger.Info("reusing the PostgreSQL cluster", "dir", dir)
	}
	// A free port is found by binding to port 0 and closing it: another
	// process may take it before postgres binds it, so a start that fails
	// to bind is retried on another port.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		ports, err := freeport.Ports(1)
		if err != nil {
			return nil, fmt.Errorf("pgserver: finding a free port: %w", err)
		}
		port := ports[0]
		s, err := launch(ctx, bin, dir, port, cred, o.settings, logger)
		if errors.Is(err, errPortTaken) && attempt < attempts {
			logger.Info("port taken before postgres bound it; trying another", "port", port)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.ensureDatabase(ctx); err != nil {
			s.Stop()
			return nil, err
		}
		logger.Info("PostgreSQL server started", "dir", dir, "port", port, "pid", s.cmd.Process.Pid)
		return s, nil
	}
}

// postgresUser returns the credential of the user postgres, which the
// server runs as when this process is root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root, and PostgreSQL refuses to run as root, but there is no user postgres to run it as (%v): install the postgresql package, which creates it, or run as another user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgserver: user postgres has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// handOver makes the user postgres the owner of dir and everything in it,
// and lets it reach dir through the directories above.
func handOver(dir string, cred *syscall.Credential, logger *slog.Logger) error {
	if err := grantSearch(dir, cred, logger); err != nil {
		return err
	}
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("pgserver: handing %s over to the user postgres: %w", dir, err)
	}
	return nil
}

// grantSearch lets the user of cred pass through the directories above
// dir to it.
func grantSearch(dir string, cred *syscall.Credential, logger *slog.Logger) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if !searchable(fi, cred) {
			// Search permission for others only: postgres may pass through
			// d to dir, not list d or read what else it holds. The setgid
			// and sticky bits stay as they were.
			keep := fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
			if err := os.Chmod(d, fi.Mode()&keep|0o001); err != nil {
				return fmt.Errorf("pgserver: the user postgres cannot reach %s through %s, and granting it search permission failed: %w", dir, d, err)
			}
			logger.Warn("granted search permission (o+x) so that the user postgres can reach its data directory", "dir", d, "data", dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// searchable reports whether the user of cred may pass through the
// directory of fi, by its permission bits.
func searchable(fi fs.FileInfo, cred *syscall.Credential) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	switch {
	case !ok:
		return perm&0o001 != 0
	case st.Uid == cred.Uid:
		return perm&0o100 != 0
	case st.Gid == cred.Gid:
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

func command(ctx context.Context, path string, cred *syscall.Credential, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	// The C locale: a minimal machine may have no other, and the bank
	// needs no collation beyond bytes.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

func initdb(ctx context.Context, bin, dir string, cred *syscall.Credential, logger *slog.Logger) error {
	logger.Info("creating a PostgreSQL cluster", "dir", dir)
	// Trust is the authentication of loopback connections only: initdb's
	// pg_hba.conf admits the unix socket, 127.0.0.1/32 and ::1/128, and
	// the server listens on 127.0.0.1 alone.
	cmd := command(ctx, filepath.Join(bin, "initdb"), cred,
		"-D", dir, "-U", User, "--auth=trust", "--encoding=UTF8", "--locale=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// dir was empty: empty it again, so that a later Start creates the
		// cluster afresh rather than refusing a half-made one (initdb
		// cleans up after itself, but not when ctx killed it).
		if entries, rerr := os.ReadDir(dir); rerr == nil {
			for _, e := range entries {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		return fmt.Errorf("pgserver: initdb in %s: %w\n%s", dir, err, tail(string(out), 20))
	}
	return nil
}

// errPortTaken reports a postgres that could not bind its port.
var errPortTaken = errors.New("port already in use")

// maxSocketPath is the longest unix socket path Linux takes (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

func launch(ctx context.Context, bin, dir string, port int, cred *syscall.Credential, extra [][2]string, logger *slog.Logger) (*Server, error) {
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	if cred != nil {
		if err := logFile.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
	}
	start, _ := logFile.Seek(0, io.SeekEnd)
	socketDir := dir
	if len(dir)+len("/.s.PGSQL.65535") > maxSocketPath {
		// A path too long for a socket would stop postgres: TCP suffices.
		logger.Info("data directory path too long for a unix socket; TCP only", "dir", dir)
		socketDir = ""
	}
	args := []string{"-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + socketDir,
	}
	for _, kv := range extra {
		args = append(args, "-c", kv[0]+"="+kv[1])
	}
	// Not CommandContext: ctx bounds the start, not the server's life.
	cmd := command(context.Background(), filepath.Join(bin, "postgres"), cred, args...)
	// SIGINT is postgres's fast shutdown (pg_ctl stop -m fast): sent if
	// this process dies without calling Stop, so that a crashed test or
	// bank leaves no server behind. Go sets it after dropping privileges,
	// which would otherwise clear it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgserver: starting postgres: %w", err)
	}
	s := &Server{dir: dir, port: port, logger: logger, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		log := readFrom(logPath, start)
		if strings.Contains(log, "Address already in use") {
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("pgserver: postgres in %s did not start: %w\n%s", dir, err, tail(log, 20))
	}
	return s, nil
}

// waitReady polls until the server accepts a connection, postgres exits,
// or ctx (bounded at a minute) runs out.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(attempt, s.DSNFor("postgres"))
		cancelAttempt()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" {
			// The server answered with an error other than "starting up"
			// (cannot_connect_now): waiting will not help.
			return err
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// ensureDatabase creates the bank's database unless it exists.
func (s *Server) ensureDatabase(ctx context.Context) error {
	conn, err := pgconn.Connect(ctx, s.DSNFor("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SELECT 1 FROM pg_database WHERE datname = '"+Database+"'").ReadAll()
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if len(res) == 1 && len(res[0].Rows) == 1 {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database).ReadAll(); err != nil {
		return fmt.Errorf("pgserver: creating database %s: %w", Database, err)
	}
	return nil
}

// Stop shuts the server down (fast: open connections are ended, the data
// is checkpointed) and waits until postgres has exited. Later calls
// return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.exited:
		return nil // exited already (a failed start, or killed)
	default:
	}
	// SIGINT is what pg_ctl stop -m fast sends; signalling directly also
	// works when postgres runs as another user, since we are root then.
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgserver: stopping postgres: %w", err)
	}
	const grace = time.Minute
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-s.exited:
		s.logger.Info("PostgreSQL server stopped", "dir", s.dir)
		return nil
	case <-timer.C:
	}
	// A fast shutdown that takes a minute is stuck: immediate shutdown
	// (SIGQUIT) leaves the cluster to recover from its log at next start,
	// and SIGKILL is the last resort if even that hangs.
	s.logger.Warn("postgres did not stop within a minute; immediate shutdown", "dir", s.dir)
	s.cmd.Process.Signal(syscall.SIGQUIT)
	timer.Reset(10 * time.Second)
	select {
	case <-s.exited:
	case <-timer.C:
		s.cmd.Process.Kill()
		<-s.exited
	}
	return fmt.Errorf("pgserver: postgres in %s needed an immediate shutdown after %v", s.dir, grace)
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
