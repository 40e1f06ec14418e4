// Package auth holds the credentials of the bank's data server and its
// business servers.
//
// Two kinds of credential exist because the two kinds of caller must not be
// interchangeable: end users present client tokens in the "token" header and
// may only reach the public routes, while the data server and its business
// servers share one server credential that alone opens the data routes.
// Keeping them in separate types makes it impossible to check a server call
// against the client token set by accident.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// DefaultClientTokens are the original bank's ten demo tokens.
//
// They are kept so that clients written against the demo keep working without
// configuration; production deployments should load their own set with
// LoadTokens instead, since these values are public.
var DefaultClientTokens = []string{"ba0f", "4c0e", "a5fc", "b317", "6t2q", "a061", "1aac", "8w9k", "8ace", "8d69"}

// Sentinel errors, matched with errors.Is. The wrapped messages that carry
// them never include token or secret text, so they are safe to log.
var (
	// ErrEmptyToken reports an empty or all-whitespace token: accepting it
	// would let a request with a blank header authenticate.
	ErrEmptyToken = errors.New("empty token")

	// ErrInvalidToken reports a token holding whitespace or control
	// characters. Such a token cannot be sent intact in an HTTP header, and in
	// a one-per-line file it almost always means two tokens were glued onto
	// one line, so it is refused rather than silently never matching.
	ErrInvalidToken = errors.New("token contains whitespace or control characters")

	// ErrNoTokens reports an empty token set: a server that accepts no one is
	// a configuration mistake better caught at start-up than at first request.
	ErrNoTokens = errors.New("no tokens")
)

// Tokens is an immutable set of secrets.
//
// Membership is checked without leaking, through timing, which byte of a guess
// was wrong: only SHA-256 digests are stored, and a lookup hashes the presented
// token first, so the map's early-exit key comparison works on digests whose
// prefixes tell an attacker nothing about the token. The final equality is
// then confirmed with subtle.ConstantTimeCompare so that the decision itself
// does not depend on the map implementation's comparison strategy.
//
// The zero value and a nil *Tokens are empty sets that contain nothing.
type Tokens struct {
	digests map[[sha256.Size]byte][sha256.Size]byte
}

// NewTokens builds a set from tokens, trimming surrounding whitespace because
// tokens typically come from configuration where stray spaces and newlines are
// easy to introduce and invisible. Duplicates are accepted and collapse into
// one member. It fails with ErrEmptyToken for a blank token, ErrInvalidToken
// for one with inner whitespace or control characters, and ErrNoTokens when
// no token is given. Errors identify a token by its position, never its text.
func NewTokens(tokens ...string) (*Tokens, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("auth: new tokens: %w", ErrNoTokens)
	}
	set := &Tokens{digests: make(map[[sha256.Size]byte][sha256.Size]byte, len(tokens))}
	for i, tok := range tokens {
		if err := set.add(tok); err != nil {
			return nil, fmt.Errorf("auth: new tokens: token #%d: %w", i+1, err)
		}
	}
	return set, nil
}

// add validates and inserts one token; it reports only a sentinel so that the
// caller decides how to locate the token (index or file line) in the message.
func (t *Tokens) add(tok string) error {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return ErrEmptyToken
	}
	if strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ErrInvalidToken
	}
	d := sha256.Sum256([]byte(tok))
	t.digests[d] = d
	return nil
}

// LoadTokens reads a token set from the file at path so that deployments can
// replace the public demo tokens without rebuilding. The file holds one token
// per line; blank lines and lines starting with '#' (after leading whitespace)
// are skipped so the file can be annotated. Errors mention the path and, for a
// bad line, its number, but never the token text, because error messages end
// up in logs that are far less protected than the file itself.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The *PathError already names the file.
		return nil, fmt.Errorf("auth: load tokens: %w", err)
	}
	set := &Tokens{digests: make(map[[sha256.Size]byte][sha256.Size]byte)}
	lineNo := 0
	for line := range strings.Lines(string(data)) {
		lineNo++
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if err := set.add(trimmed); err != nil {
			return nil, fmt.Errorf("auth: load tokens: %s:%d: %w", path, lineNo, err)
		}
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("auth: load tokens: %s: %w", path, ErrNoTokens)
	}
	return set, nil
}

// Contains reports whether token is a member of the set. It is safe on a nil
// set, which contains nothing, so that an unconfigured server denies access
// instead of panicking. An empty token never matches. It does not allocate,
// because it runs on every request.
func (t *Tokens) Contains(token []byte) bool {
	if t == nil || len(token) == 0 || len(t.digests) == 0 {
		return false
	}
	d := sha256.Sum256(token)
	stored, ok := t.digests[d]
	return ok && subtle.ConstantTimeCompare(stored[:], d[:]) == 1
}

// Len returns the number of distinct tokens, letting start-up code log how
// many credentials were loaded without ever printing them.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.digests)
}

// String describes the set by size only: the digests of short tokens such as
// the demo ones can be reversed by brute force, so they must not reach logs
// through fmt's default struct formatting.
func (t *Tokens) String() string {
	return "auth.Tokens(" + strconv.Itoa(t.Len()) + " tokens)"
}

// GoString hides the digests from %#v for the same reason as String.
func (t *Tokens) GoString() string {
	return t.String()
}
