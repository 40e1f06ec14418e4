package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewTokens(t *testing.T) {
	tests := []struct {
		name    string
		tokens  []string
		wantErr error
		wantLen int
		member  string // must be Contained when no error is expected
	}{
		{name: "defaults", tokens: DefaultClientTokens, wantLen: 10, member: "8w9k"},
		{name: "single", tokens: []string{"abc"}, wantLen: 1, member: "abc"},
		{name: "trims spaces", tokens: []string{" \tabc\r\n"}, wantLen: 1, member: "abc"},
		{name: "duplicates collapse", tokens: []string{"abc", "abc", " abc "}, wantLen: 1, member: "abc"},
		{name: "none", tokens: nil, wantErr: ErrNoTokens},
		{name: "empty slice", tokens: []string{}, wantErr: ErrNoTokens},
		{name: "empty token", tokens: []string{"abc", ""}, wantErr: ErrEmptyToken},
		{name: "whitespace token", tokens: []string{" \t\n"}, wantErr: ErrEmptyToken},
		{name: "inner space", tokens: []string{"s3cr3t other"}, wantErr: ErrInvalidToken},
		{name: "control character", tokens: []string{"s3cr3t\x00x"}, wantErr: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewTokens(tt.tokens...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NewTokens error = %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("NewTokens returned a set alongside error %v", err)
				}
				for _, tok := range tt.tokens {
					if tok = strings.TrimSpace(tok); tok != "" && strings.Contains(err.Error(), tok) {
						t.Errorf("error %q leaks token text %q", err, tok)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NewTokens: unexpected error %v", err)
			}
			if got.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", got.Len(), tt.wantLen)
			}
			if !got.Contains([]byte(tt.member)) {
				t.Errorf("Contains(%q) = false, want true", tt.member)
			}
		})
	}
}

func TestContains(t *testing.T) {
	set, err := NewTokens(DefaultClientTokens...)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name  string
		set   *Tokens
		token []byte
		want  bool
	}
	tests := []tc{
		{name: "unknown", set: set, token: []byte("ffff"), want: false},
		{name: "empty", set: set, token: []byte{}, want: false},
		{name: "nil token", set: set, token: nil, want: false},
		{name: "prefix of a token", set: set, token: []byte("ba0"), want: false},
		{name: "token plus extra byte", set: set, token: []byte("ba0fx"), want: false},
		{name: "token plus NUL", set: set, token: []byte("ba0f\x00"), want: false},
		{name: "untrimmed token", set: set, token: []byte(" ba0f"), want: false},
		{name: "different case", set: set, token: []byte("BA0F"), want: false},
		{name: "nil set", set: nil, token: []byte("ba0f"), want: false},
		{name: "nil set empty token", set: nil, token: nil, want: false},
		{name: "zero value set", set: &Tokens{}, token: []byte("ba0f"), want: false},
	}
	for _, tok := range DefaultClientTokens {
		tests = append(tests, tc{name: "default " + tok, set: set, token: []byte(tok), want: true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Contains(tt.token); got != tt.want {
				t.Errorf("Contains(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

func TestLenAndStringHideSecrets(t *testing.T) {
	set, err := NewTokens("alpha", "beta")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		set     *Tokens
		wantLen int
		wantStr string
	}{
		{name: "two", set: set, wantLen: 2, wantStr: "auth.Tokens(2 tokens)"},
		{name: "nil", set: nil, wantLen: 0, wantStr: "auth.Tokens(0 tokens)"},
		{name: "zero", set: &Tokens{}, wantLen: 0, wantStr: "auth.Tokens(0 tokens)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Len(); got != tt.wantLen {
				t.Errorf("Len = %d, want %d", got, tt.wantLen)
			}
			for _, verb := range []string{"%v", "%s", "%+v", "%#v"} {
				if got := fmt.Sprintf(verb, tt.set); got != tt.wantStr {
					t.Errorf("Sprintf(%s) = %q, want %q", verb, got, tt.wantStr)
				}
			}
		})
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name      string
		path      string
		wantErr   error
		wantInErr []string // substrings the error must contain
		secret    string   // text the error must never contain
		wantLen   int
		members   []string
	}{
		{
			name:    "comments and blank lines",
			path:    write("ok.txt", "# client tokens\n\nalpha\n  # indented comment\n\t beta \r\n\nalpha\ngamma"),
			wantLen: 3,
			members: []string{"alpha", "beta", "gamma"},
		},
		{
			name:    "defaults one per line",
			path:    write("defaults.txt", strings.Join(DefaultClientTokens, "\n")+"\n"),
			wantLen: 10,
			members: DefaultClientTokens,
		},
		{
			name:      "missing file",
			path:      filepath.Join(dir, "missing.txt"),
			wantErr:   fs.ErrNotExist,
			wantInErr: []string{filepath.Join(dir, "missing.txt")},
		},
		{
			name:      "bad line",
			path:      write("bad.txt", "# header\nalpha\nsup3rsecret other\nbeta\n"),
			wantErr:   ErrInvalidToken,
			wantInErr: []string{filepath.Join(dir, "bad.txt") + ":3"},
			secret:    "sup3rsecret",
		},
		{
			name:      "control character line",
			path:      write("ctrl.txt", "alpha\n\nhidd\x01en\n"),
			wantErr:   ErrInvalidToken,
			wantInErr: []string{filepath.Join(dir, "ctrl.txt") + ":3"},
			secret:    "hidd",
		},
		{
			name:      "only comments",
			path:      write("empty.txt", "# nothing\n\n   \n"),
			wantErr:   ErrNoTokens,
			wantInErr: []string{filepath.Join(dir, "empty.txt")},
		},
		{
			name:      "empty file",
			path:      write("zero.txt", ""),
			wantErr:   ErrNoTokens,
			wantInErr: []string{filepath.Join(dir, "zero.txt")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadTokens(tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("LoadTokens error = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.wantInErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q leaks token text %q", err, tt.secret)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadTokens: unexpected error %v", err)
			}
			if got.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", got.Len(), tt.wantLen)
			}
			for _, m := range tt.members {
				if !got.Contains([]byte(m)) {
					t.Errorf("Contains(%q) = false, want true", m)
				}
			}
			if got.Contains([]byte("# client tokens")) {
				t.Error("a comment line became a token")
			}
		})
	}
}

func TestContainsZeroAllocs(t *testing.T) {
	set, err := NewTokens(DefaultClientTokens...)
	if err != nil {
		t.Fatal(err)
	}
	long := []byte(strings.Repeat("x", 4096))
	tests := []struct {
		name  string
		set   *Tokens
		token []byte
	}{
		{name: "hit", set: set, token: []byte("8d69")},
		{name: "miss", set: set, token: []byte("zzzz")},
		{name: "long miss", set: set, token: long},
		{name: "empty", set: set, token: nil},
		{name: "nil set", set: nil, token: []byte("8d69")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(1000, func() { tt.set.Contains(tt.token) }); allocs != 0 {
				t.Errorf("Contains allocates %v times per call, want 0", allocs)
			}
		})
	}
}

// unsetServerEnv makes the file path the source of the secret even when the
// developer running the tests has EnvServerToken exported.
func unsetServerEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvServerToken, "")
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestServerSecretEnvironment(t *testing.T) {
	tests := []struct {
		name       string
		env        string
		wantSecret string // "" means: a generated secret from the file
		wantSource string
	}{
		{name: "env wins", env: "env-secret", wantSecret: "env-secret", wantSource: "environment " + EnvServerToken},
		{name: "env trimmed", env: "  env-secret\n", wantSecret: "env-secret", wantSource: "environment " + EnvServerToken},
		{name: "blank env ignored", env: " \t ", wantSource: "file"},
		{name: "empty env ignored", env: "", wantSource: "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvServerToken, tt.env)
			path := filepath.Join(t.TempDir(), "gobank", "server-token")
			secret, source, err := ServerSecret(path)
			if err != nil {
				t.Fatalf("ServerSecret: %v", err)
			}
			if tt.wantSecret != "" {
				if secret != tt.wantSecret || source != tt.wantSource {
					t.Errorf("ServerSecret = %q, %q; want %q, %q", secret, source, tt.wantSecret, tt.wantSource)
				}
				if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("secret file created although the environment gave the secret (stat: %v)", err)
				}
				return
			}
			if source != path || secret == "" {
				t.Errorf("ServerSecret = %q, %q; want a generated secret from %q", secret, source, path)
			}
		})
	}
}

func TestServerSecretCreatesFile(t *testing.T) {
	unsetServerEnv(t)
	tests := []struct {
		name   string
		subdir []string // directories below t.TempDir() that do not exist yet
	}{
		{name: "existing dir"},
		{name: "new dir", subdir: []string{"gobank"}},
		{name: "nested new dirs", subdir: []string{"config", "gobank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(append([]string{root}, tt.subdir...)...)
			path := filepath.Join(dir, "server-token")

			secret, source, err := ServerSecret(path)
			if err != nil {
				t.Fatalf("first ServerSecret: %v", err)
			}
			if source != path {
				t.Errorf("source = %q, want %q", source, path)
			}
			if len(secret) != 2*secretBytes || strings.Trim(secret, "0123456789abcdef") != "" {
				t.Errorf("secret %q is not %d hex characters", secret, 2*secretBytes)
			}
			if strings.Contains(source, secret) {
				t.Error("source leaks the secret")
			}
			if runtime.GOOS != "windows" {
				if m := mode(t, path); m != 0o600 {
					t.Errorf("file mode = %04o, want 0600", m)
				}
				for i := range tt.subdir {
					d := filepath.Join(append([]string{root}, tt.subdir[:i+1]...)...)
					if m := mode(t, d); m != 0o700 {
						t.Errorf("dir %s mode = %04o, want 0700", d, m)
					}
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(data)) != secret {
				t.Errorf("file holds %q, returned %q", data, secret)
			}

			again, source2, err := ServerSecret(path)
			if err != nil {
				t.Fatalf("second ServerSecret: %v", err)
			}
			if again != secret || source2 != path {
				t.Errorf("second call = %q, %q; want %q, %q", again, source2, secret, path)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("dir holds %d entries, want only the secret file (temporary files left behind?)", len(entries))
			}
		})
	}
}

func TestServerSecretReadsExistingFile(t *testing.T) {
	unsetServerEnv(t)
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{name: "plain", content: "abc", want: "abc"},
		{name: "trailing newline", content: "abc\n", want: "abc"},
		{name: "surrounding whitespace", content: "\n  abc \r\n", want: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server-token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, source, err := ServerSecret(path)
			if err != nil {
				t.Fatalf("ServerSecret: %v", err)
			}
			if got != tt.want || source != path {
				t.Errorf("ServerSecret = %q, %q; want %q, %q", got, source, tt.want, path)
			}
		})
	}
}

func TestServerSecretConcurrentCreation(t *testing.T) {
	unsetServerEnv(t)
	const workers = 16
	tests := []struct {
		name string
		path func(root string) string
	}{
		{name: "fresh dir", path: func(root string) string { return filepath.Join(root, "gobank", "server-token") }},
		{name: "existing dir", path: func(root string) string { return filepath.Join(root, "server-token") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t.TempDir())
			secrets := make([]string, workers)
			errs := make([]error, workers)
			var start, done sync.WaitGroup
			start.Add(1)
			for i := range workers {
				done.Go(func() {
					start.Wait() // release all at once to maximise contention
					secrets[i], _, errs[i] = ServerSecret(path)
				})
			}
			start.Done()
			done.Wait()
			for i := range workers {
				if errs[i] != nil {
					t.Fatalf("worker %d: %v", i, errs[i])
				}
				if secrets[i] == "" || secrets[i] != secrets[0] {
					t.Fatalf("worker %d got %q, worker 0 got %q; want the same non-empty secret", i, secrets[i], secrets[0])
				}
			}
			onDisk, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(onDisk)) != secrets[0] {
				t.Errorf("file holds %q, workers got %q", onDisk, secrets[0])
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("dir holds %d entries, want only the secret file", len(entries))
			}
		})
	}
}

func TestServerSecretRefused(t *testing.T) {
	unsetServerEnv(t)
	const secret = "do-not-print-me"
	tests := []struct {
		name      string
		setup     func(t *testing.T, path string)
		wantErr   error
		wantInErr []string
		posixOnly bool
	}{
		{
			name:      "group readable",
			setup:     writeWithMode(secret, 0o640),
			wantErr:   ErrInsecureSecret,
			wantInErr: []string{"chmod 600"},
			posixOnly: true,
		},
		{
			name:      "world readable",
			setup:     writeWithMode(secret, 0o644),
			wantErr:   ErrInsecureSecret,
			wantInErr: []string{"chmod 600", "0644"},
			posixOnly: true,
		},
		{
			name:      "group writable only",
			setup:     writeWithMode(secret, 0o620),
			wantErr:   ErrInsecureSecret,
			wantInErr: []string{"chmod 600"},
			posixOnly: true,
		},
		{name: "empty file", setup: writeWithMode("", 0o600), wantErr: ErrEmptySecret},
		{name: "whitespace file", setup: writeWithMode(" \n\t\n", 0o600), wantErr: ErrEmptySecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.posixOnly && runtime.GOOS == "windows" {
				t.Skip("permission bits are not meaningful on Windows")
			}
			path := filepath.Join(t.TempDir(), "server-token")
			tt.setup(t, path)
			got, source, err := ServerSecret(path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ServerSecret = %q, %q, %v; want error %v", got, source, err, tt.wantErr)
			}
			if got != "" || source != "" {
				t.Errorf("ServerSecret returned %q, %q alongside an error", got, source)
			}
			msg := err.Error()
			for _, s := range append(tt.wantInErr, path) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %q", msg, s)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q leaks the secret", msg)
			}
		})
	}
}

func writeWithMode(content string, perm fs.FileMode) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		// Chmod after writing, because WriteFile's mode is filtered by umask.
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCreateExclusiveFallback covers the path taken on file systems without
// hard links, which the host running the tests most likely never exercises.
func TestCreateExclusiveFallback(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, path string)
	}{
		{
			name: "creates 0600 file",
			run: func(t *testing.T, path string) {
				got, err := createExclusive(path, "first")
				if err != nil || got != "first" {
					t.Fatalf("createExclusive = %q, %v; want first", got, err)
				}
				if m := mode(t, path); runtime.GOOS != "windows" && m != 0o600 {
					t.Errorf("mode = %04o, want 0600", m)
				}
			},
		},
		{
			name: "loser gets winner's secret",
			run: func(t *testing.T, path string) {
				if _, err := createExclusive(path, "winner"); err != nil {
					t.Fatal(err)
				}
				got, err := createExclusive(path, "loser")
				if err != nil || got != "winner" {
					t.Fatalf("createExclusive = %q, %v; want winner", got, err)
				}
			},
		},
		{
			name: "loser waits while winner's file is empty",
			run: func(t *testing.T, path string) {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					time.Sleep(50 * time.Millisecond)
					_ = writeAndClose(f, "late-winner")
				}()
				got, err := createExclusive(path, "loser")
				if err != nil || got != "late-winner" {
					t.Fatalf("createExclusive = %q, %v; want late-winner", got, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, filepath.Join(t.TempDir(), "server-token"))
		})
	}
}

func TestDefaultSecretPath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("os.UserConfigDir's environment variables are platform specific")
	}
	tests := []struct {
		name string
		xdg  string
		home string
		want string
	}{
		{name: "xdg config home", xdg: "/xdg", home: "/home/u", want: "/xdg/gobank/server-token"},
		{name: "home config", xdg: "", home: "/home/u", want: "/home/u/.config/gobank/server-token"},
		{name: "no config dir", xdg: "", home: "", want: ".gobank-server-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			if got := DefaultSecretPath(); got != tt.want {
				t.Errorf("DefaultSecretPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServerSecretEmptyPathUsesDefault(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("os.UserConfigDir's environment variables are platform specific")
	}
	unsetServerEnv(t)
	tests := []struct {
		name string
		path string
	}{
		{name: "empty path", path: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xdg := t.TempDir()
			t.Setenv("XDG_CONFIG_HOME", xdg)
			want := filepath.Join(xdg, "gobank", "server-token")
			secret, source, err := ServerSecret(tt.path)
			if err != nil || secret == "" || source != want {
				t.Fatalf("ServerSecret(%q) = %q, %q, %v; want a secret from %q", tt.path, secret, source, err, want)
			}
			if _, err := os.Stat(want); err != nil {
				t.Errorf("default secret file not created: %v", err)
			}
		})
	}
}
