package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// EnvServerToken names the environment variable that, when set, holds the
// server credential. It takes precedence over the file so that containers and
// multi-host deployments, which do not share a home directory, can inject the
// credential without writing it to disk.
const EnvServerToken = "BANK_SERVER_TOKEN"

// Sentinel errors of ServerSecret, matched with errors.Is.
var (
	// ErrInsecureSecret reports a secret file that group or others can read:
	// anyone who can read it can impersonate the data server, so it is
	// refused rather than used.
	ErrInsecureSecret = errors.New("server secret file is readable by group or others")

	// ErrEmptySecret reports a secret file with nothing but whitespace in it;
	// using an empty credential would let any caller pass as a server.
	ErrEmptySecret = errors.New("empty server secret")
)

const (
	// secretBytes is the entropy of a generated secret; 256 bits puts
	// guessing out of reach regardless of request rate.
	secretBytes = 32

	// maxSecretFileSize bounds what is read from the secret file, so that a
	// path mistakenly pointing at a large file fails fast instead of loading
	// it into memory.
	maxSecretFileSize = 64 << 10

	// racingReadTimeout bounds how long a process that lost the creation
	// race waits for the winner's content when the non-atomic fallback is in
	// use; the winner writes a few dozen bytes, so this is generous.
	racingReadTimeout = 500 * time.Millisecond
)

// DefaultSecretPath is where a data server keeps the server credential when
// the environment does not give one, so that business servers on the same
// host find it with zero flags (like Erlang's ~/.erlang.cookie). It is
// filepath.Join(os.UserConfigDir(), "gobank", "server-token"), falling back to
// ".gobank-server-token" in the working directory when there is no user
// configuration directory (e.g. $HOME unset under some service managers).
func DefaultSecretPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ".gobank-server-token"
	}
	return filepath.Join(dir, "gobank", "server-token")
}

// ServerSecret resolves the server credential shared by the data server and
// its business servers.
//
// The environment variable EnvServerToken wins when set and non-empty
// (whitespace trimmed). Otherwise the file at path (DefaultSecretPath when
// path is empty) is read and trimmed. When the file does not exist it is
// created with a fresh random secret (32 bytes from crypto/rand, hex-encoded)
// in a directory created with mode 0700 and a file of mode 0600. Creation is
// race-free: the secret is written to a temporary file in the same directory
// and hard-linked into place, which fails if the name already exists, so the
// file never appears empty or half-written and every process racing to create
// it ends up with the winner's secret. On file systems without hard links it
// falls back to O_CREATE|O_EXCL and the losers briefly retry while the
// winner's file is still empty.
//
// A file readable by group or others is refused with ErrInsecureSecret, and an
// empty file with ErrEmptySecret. source describes where the secret came from
// ("environment BANK_SERVER_TOKEN" or the file path) so it can be logged; the
// secret itself never appears in source or in an error.
func ServerSecret(path string) (secret string, source string, err error) {
	if v := strings.TrimSpace(os.Getenv(EnvServerToken)); v != "" {
		return v, "environment " + EnvServerToken, nil
	}
	if path == "" {
		path = DefaultSecretPath()
	}
	secret, err = readSecret(path)
	if err == nil {
		return secret, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("auth: server secret: %w", err)
	}
	secret, err = createSecret(path)
	if err != nil {
		return "", "", fmt.Errorf("auth: server secret: %w", err)
	}
	return secret, path, nil
}

// readSecret reads and validates an existing secret file. Permissions are
// checked on the opened descriptor rather than the path so that a file swapped
// between the check and the read cannot slip through.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err // *PathError already names the file
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	// Windows reports synthetic permission bits that do not reflect ACLs, so
	// the check would refuse every file there.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o; run chmod 600 %s: %w", path, perm, path, ErrInsecureSecret)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxSecretFileSize {
		return "", fmt.Errorf("%s: larger than %d bytes, not a secret file", path, maxSecretFileSize)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("%s: %w", path, ErrEmptySecret)
	}
	return secret, nil
}

// createSecret creates the secret file at path, or returns the secret of
// whoever created it first.
func createSecret(path string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create secret directory: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}

	// os.CreateTemp uses mode 0600, so the secret is never exposed, not even
	// under the temporary name.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create secret: %w", err)
	}
	tmpName := tmp.Name()
	// The temporary name is only a staging area: once linked, the content
	// lives on under path; if linking lost the race, it must not linger.
	defer os.Remove(tmpName)
	if err := writeAndClose(tmp, secret); err != nil {
		return "", fmt.Errorf("create secret %s: %w", path, err)
	}

	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		syncDir(dir)
		return secret, nil
	case errors.Is(err, fs.ErrExist):
		return readRacing(path)
	default:
		// Hard links are unsupported on some file systems (FAT, some FUSE
		// and network mounts); exclusive creation still guarantees one
		// winner, at the cost of a short window where the file is empty.
		return createExclusive(path, secret)
	}
}

// createExclusive is the fallback creation path for file systems without
// hard links.
func createExclusive(path, secret string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readRacing(path)
	}
	if err != nil {
		return "", fmt.Errorf("create secret: %w", err)
	}
	if err := writeAndClose(f, secret); err != nil {
		// An empty or truncated file would be refused forever after; removing
		// it lets the next start try again.
		os.Remove(path)
		return "", fmt.Errorf("create secret %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return secret, nil
}

// readRacing reads a secret file that another process has just created,
// retrying briefly while it is still empty because, with the O_EXCL
// fallback, the winner's write may not have landed yet.
func readRacing(path string) (string, error) {
	deadline := time.Now().Add(racingReadTimeout)
	for {
		secret, err := readSecret(path)
		if err == nil || !errors.Is(err, ErrEmptySecret) || time.Now().After(deadline) {
			return secret, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeAndClose writes the secret durably: a secret lost in a crash after
// business servers have read it would split the cluster into two credentials.
func writeAndClose(f *os.File, secret string) error {
	_, werr := f.WriteString(secret + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

// syncDir makes a new directory entry durable. It is best effort: some
// platforms cannot sync directories, and the secret is already in place.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// newSecret returns a fresh hex-encoded random secret, hex so that it
// survives environment variables, files and HTTP headers unchanged.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
