package upstreamtest

import (
	"strings"
)

// portTaken reports whether a peer's log says it could not listen because
// its port was in use. Only then is starting it again on another port
// worth it: any other failure (a missing package or Perl module, a config
// the peer rejects) will not go away, and the test must fail at once with
// the peer's own words instead of retrying for minutes.
func portTaken(log string) bool {
	l := strings.ToLower(log)
	for _, s := range []string{"address already in use", "addrinuse", "could not bind", "failed binding", "bind to port", "slap_open_listener: failed"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// lastLines returns the last n lines of a peer's log, which is where a
// peer says why it stopped.
func lastLines(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
