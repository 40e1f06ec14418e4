package business

// SetHook makes s call f at named points of its operations (see Stages);
// nil removes it. Tests only.
func SetHook(s *Server, f func(stage string)) {
	if f == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&f)
}

// ScopedKey exposes the key under which the data server keeps the outcome
// of a client's Idempotency-Key.
func ScopedKey(token, key string) string { return scopedKey([]byte(token), []byte(key)) }
