package ldapproxy_test

import (
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/policy"
)

// BenchmarkBindLocalUser measures the door and the gate without an
// upstream: plain binds of a local user (cheap test hashing) on 8
// persistent connections. What remains is decoding, the decision's
// queries and its audit entry.
func BenchmarkBindLocalUser(b *testing.B) {
	e := newEnv(b, opts{mut: func(p *policy.Policy) { p.AllowPlainLDAP = true }})
	const conc = 8
	conns := make([]*ldap.Conn, conc)
	for i := range conns {
		c, err := ldap.DialURL("ldap://" + e.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/conc + 1
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := c.Bind("alice", alicePW); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
