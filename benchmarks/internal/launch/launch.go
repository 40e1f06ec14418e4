// Package launch starts the bank's servers for the measuring programs of
// package benchmarks (ratios, scaleout).
package launch

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// WaitListening copies a server's stderr to file and returns the URL of
// its "listening on URL" line, once the server has printed it.
func WaitListening(name string, stderr io.Reader, file string) (string, error) {
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	found := make(chan string, 1)
	go func() {
		defer f.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			// Not the debug server's "... (pprof, metrics) listening on".
			if i := strings.Index(line, "listening on http://"); i >= 0 && !strings.Contains(line, "pprof") {
				u := strings.TrimSuffix(strings.Fields(line[i+len("listening on "):])[0], `"`)
				select {
				case found <- u:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			return "", fmt.Errorf("%s exited before listening (see %s)", name, file)
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(u, "http://")); err != nil {
			return "", fmt.Errorf("%s: odd listening line %q", name, u)
		}
		return u, nil
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("%s did not listen within 60s (see %s)", name, file)
	}
}
