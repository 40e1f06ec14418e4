package business

import (
	"crypto/sha256"
	"sync"
	"time"
)

// authCacheMax bounds the cache: past it, expired entries are swept, and if
// that is not enough the cache starts over. Many distinct valid tokens only
// cost extra /autentica calls, never memory.
const authCacheMax = 4096

// authCache remembers, for a short TTL, which client tokens the data server
// accepted, so that a client's burst of requests costs one /autentica call.
//
// It never holds a raw token: entries are keyed by the token's SHA-256, so a
// heap dump or a debugger shows no credential. Only positive answers are
// kept: a refused token is asked about again each time, so a token the
// data server starts accepting works at once, while one it stops accepting
// keeps working here for at most the TTL.
type authCache struct {
	ttl time.Duration // <= 0: disabled
	mu  sync.Mutex
	m   map[[sha256.Size]byte]time.Time // digest -> expiry
}

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{ttl: ttl, m: make(map[[sha256.Size]byte]time.Time)}
}

// ok reports whether the token with this digest was accepted less than a
// TTL ago.
func (c *authCache) ok(key [sha256.Size]byte, now time.Time) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	exp, found := c.m[key]
	c.mu.Unlock()
	return found && now.Before(exp)
}

// put records that the data server accepted the token with this digest.
func (c *authCache) put(key [sha256.Size]byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, found := c.m[key]; !found && len(c.m) >= authCacheMax {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= authCacheMax {
			clear(c.m)
		}
	}
	c.m[key] = now.Add(c.ttl)
}
