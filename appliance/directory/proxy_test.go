package directory

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// fakeUpstream records the search it was sent and answers with entries.
type fakeUpstream struct {
	sent    *ldap.SearchRequest
	entries []*ldap.Entry
	err     error
}

func (f *fakeUpstream) Directory(context.Context, string) (upstream.Directory, error) { return f, nil }
func (f *fakeUpstream) NameForDN(context.Context, string) (string, error) {
	return "", upstream.ErrUnknownUser
}
func (f *fakeUpstream) SearchDirectory(_ context.Context, r *ldap.SearchRequest) (*ldap.SearchResult, error) {
	f.sent = r
	return &ldap.SearchResult{Entries: f.entries}, f.err
}

type rootOnly struct{ searched bool }

func (r *rootOnly) Search(context.Context, Query, func(Entry) error) error {
	r.searched = true
	return nil
}
func (r *rootOnly) NameForDN(context.Context, string) (string, error) { return "", ErrUnknownUser }

func TestProxySearchStaysInsideBaseAndAllowlist(t *testing.T) {
	set := Settings{BaseDN: "dc=clinic,dc=local", Attributes: []string{"cn", "mail"}, SizeLimit: 2, TimeLimit: 10 * time.Second}
	up := &fakeUpstream{entries: []*ldap.Entry{
		ldap.NewEntry("cn=a,dc=clinic,dc=local", map[string][]string{"cn": {"a"}, "userPassword": {"x"}}),
		ldap.NewEntry("cn=b,dc=clinic,dc=local", map[string][]string{"cn": {"b"}}),
		ldap.NewEntry("cn=c,dc=clinic,dc=local", map[string][]string{"cn": {"c"}}),
	}}
	local := &rootOnly{}
	p := Proxy{Upstreams: up, Upstream: "corp", Local: local, Settings: set}
	var got []Entry
	collect := func(e Entry) error { got = append(got, e); return nil }

	err := p.Search(t.Context(), Query{BaseDN: "dc=other", Scope: ldap.ScopeWholeSubtree, Filter: "(cn=*)"}, collect)
	if !errors.Is(err, ErrNoSuchObject) || up.sent != nil {
		t.Fatalf("outside the base: got %v (sent %v), want ErrNoSuchObject and nothing sent", err, up.sent)
	}
	err = p.Search(t.Context(), Query{BaseDN: "DC=Clinic,DC=Local", Scope: ldap.ScopeWholeSubtree,
		Filter: "(cn=a*)", Attributes: []string{"cn", "userPassword"}, SizeLimit: 100, TimeLimit: time.Hour}, collect)
	if !errors.Is(err, ErrSizeLimit) {
		t.Errorf("got %v, want ErrSizeLimit (site limit 2, three entries)", err)
	}
	if len(got) != 2 || got[0].Attrs["userPassword"] != nil {
		t.Errorf("got %v, want two entries without userPassword", got)
	}
	if !slices.Equal(up.sent.Attributes, []string{"cn"}) || up.sent.SizeLimit != 2 || up.sent.TimeLimit != 10 {
		t.Errorf("sent attributes %v, size %d, time %d; want [cn], 2, 10", up.sent.Attributes, up.sent.SizeLimit, up.sent.TimeLimit)
	}
	if err := p.Search(t.Context(), Query{BaseDN: "", Scope: ldap.ScopeBaseObject, Filter: "(objectClass=*)"}, collect); err != nil || !local.searched {
		t.Errorf("root DSE: got %v, local searched %v; want the appliance's own", err, local.searched)
	}
	up.entries, up.err = nil, &ldap.Error{ResultCode: ldap.LDAPResultNoSuchObject, Err: errors.New("no")}
	if err := p.Search(t.Context(), Query{BaseDN: "ou=x,dc=clinic,dc=local", Filter: "(cn=*)"}, collect); !errors.Is(err, ErrNoSuchObject) {
		t.Errorf("upstream noSuchObject: got %v, want ErrNoSuchObject", err)
	}
	if _, err := (Proxy{Settings: set}).NameForDN(t.Context(), "cn=a,dc=clinic,dc=local"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no upstream configured: got %v, want ErrUnavailable", err)
	}
}
