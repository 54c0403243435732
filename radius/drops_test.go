package radius

import (
	"net"
	"testing"
)

// TestDropsNamedForTheConsole: requests dropped without an answer are
// counted by cause with the last source and client, for the console's
// dashboard (issue 14: a wrong secret or an unknown NAS showed nowhere).
func TestDropsNamedForTheConsole(t *testing.T) {
	f := newFixture(t)
	stranger := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1645}
	req := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	_ = f.s.process(t.Context(), kindAuth, req, stranger)
	for range 3 {
		_ = f.auth(t, signed(t, accessRequest(t, "alice", "correct horse"), "the-wrong-shared-secret"))
	}
	got := map[string]DropStat{}
	for _, d := range f.s.Drops() {
		got[d.Cause] = d
	}
	if d := got["unknown_client"]; d.Count != 1 || d.From != "198.51.100.7" || d.Client != "" {
		t.Errorf("unknown client: %+v", d)
	}
	if d := got["message_authenticator"]; d.Count != 3 || d.Client != "office-wifi" || d.From != nasAddr.String() {
		t.Errorf("wrong secret: %+v", d)
	}
	if f.dropped("message_authenticator") != 3 {
		t.Errorf("the metric no longer counts: %v", f.dropped("message_authenticator"))
	}
}
