package wire

import (
	"strconv"
	"unicode/utf8"

	"github.com/bank/gobank/actors/teller"
)

// The answers are tiny and fixed in shape, so they are appended by hand:
// encoding/json would cost a reflection walk and allocations per request.

// AppendError appends {"error_code":code,"error":msg}.
func AppendError(dst []byte, code teller.Code, msg string) []byte {
	dst = append(dst, `{"error_code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"error":`...)
	dst = AppendString(dst, msg)
	return append(dst, '}')
}

// BodyCode returns the error_code of a body that starts {"error_code":N, as
// AppendError writes it, and false for any other body.
func BodyCode(body []byte) (teller.Code, bool) {
	const prefix = `{"error_code":`
	if len(body) <= len(prefix) || string(body[:len(prefix)]) != prefix {
		return 0, false
	}
	end := len(prefix)
	for end < len(body) && end < len(prefix)+8 && (body[end] == '-' || body[end] >= '0' && body[end] <= '9') {
		end++
	}
	n, ok := ParseInt(body[len(prefix):end])
	if !ok {
		return 0, false
	}
	return teller.Code(n), true
}

// AppendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// ParseInt parses a decimal integer as the contract accepts it: an optional
// '-', then 1 to 19 digits, nothing else (no '+', spaces or exponent), and
// within int64. It reads b without keeping or copying it.
func ParseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
