package dataserver

import (
	"sync"
	"sync/atomic"
)

// maxInterned bounds the id_negoc values kept: a bank has a handful of
// business servers.
const maxInterned = 256

// interner keeps the id_negoc strings of authorized callers, so that the
// hot path does not allocate a string per request for the same few ids.
// Reads are lock-free (a copy-on-write map); only ids that passed the
// credential check are added, so unauthenticated callers cannot fill it.
type interner struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

// get returns b as a string, interned when known.
func (in *interner) get(b []byte) string {
	if m := in.m.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok { // no allocation for the lookup
			return s
		}
	}
	return string(b)
}

// remember interns id, unless it is known or the table is full.
func (in *interner) remember(id string) {
	if m := in.m.Load(); m != nil {
		if _, ok := (*m)[id]; ok || len(*m) >= maxInterned {
			return
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	old := in.m.Load()
	next := make(map[string]string, 1)
	if old != nil {
		if _, ok := (*old)[id]; ok || len(*old) >= maxInterned {
			return
		}
		for k, v := range *old {
			next[k] = v
		}
	}
	next[id] = id
	in.m.Store(&next)
}
