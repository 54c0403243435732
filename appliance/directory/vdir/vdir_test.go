package vdir

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	testBase   = "dc=clinic,dc=local"
	testDomain = "clinic.local"
)

func testUsers() []User {
	return []User{
		{Name: "alice", DisplayName: "Alice Anders", Groups: []string{"Staff", "Nurses"}},
		{Name: "bob", Disabled: true, Groups: []string{"Nurses"}},
		{Name: "carol", Groups: []string{"Doctors", "staff"}},
		{Name: "Smith, John", Groups: []string{"Doctors"}},
		{Name: "#lead"},
		{Name: "*)(uid=*"},
		{Name: "dave@partner.org"},
	}
}

func testTree(t testing.TB) *Tree {
	t.Helper()
	tr, err := Build(testBase, testDomain, testUsers())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tr
}

// u and g spell the DNs Build gives users and groups.
func u(name string) string { return "cn=" + name + ",ou=Users," + testBase }
func g(name string) string { return "cn=" + name + ",ou=Groups," + testBase }

const (
	usersOU  = "ou=Users," + testBase
	groupsOU = "ou=Groups," + testBase
)

var (
	// Tree order: users by folded name, then groups.
	allUsers  = []string{u(`\#lead`), u(`*)(uid\=*`), u("alice"), u("bob"), u("carol"), u("dave@partner.org"), u(`Smith\, John`)}
	allGroups = []string{g("Doctors"), g("Nurses"), g("Staff")}
)

func dns(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.DN)
	}
	return out
}

func search(t *testing.T, tr *Tree, q Query) []string {
	t.Helper()
	es, err := tr.Search(q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return dns(es)
}

func TestBuildUserAndGroupEntries(t *testing.T) {
	tr := testTree(t)
	if got, want := tr.Len(), 3+7+3; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	tests := []struct {
		dn   string
		want map[string][]string
	}{
		{testBase, map[string][]string{
			"objectClass":       {"top", "domain", "domainDNS"},
			"dc":                {"clinic"},
			"distinguishedName": {testBase},
		}},
		{usersOU, map[string][]string{
			"objectClass":       {"top", "organizationalUnit"},
			"ou":                {"Users"},
			"distinguishedName": {usersOU},
		}},
		{u("alice"), map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"objectCategory":     {"CN=Person,CN=Schema,CN=Configuration," + testBase},
			"cn":                 {"alice"},
			"name":               {"alice"},
			"sAMAccountName":     {"alice"},
			"userPrincipalName":  {"alice@clinic.local"},
			"displayName":        {"Alice Anders"},
			"memberOf":           {g("Nurses"), g("Staff")},
			"userAccountControl": {"512"},
			"distinguishedName":  {u("alice")},
		}},
		{u("bob"), map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"objectCategory":     {"CN=Person,CN=Schema,CN=Configuration," + testBase},
			"cn":                 {"bob"},
			"name":               {"bob"},
			"sAMAccountName":     {"bob"},
			"userPrincipalName":  {"bob@clinic.local"},
			"displayName":        {"bob"},
			"memberOf":           {g("Nurses")},
			"userAccountControl": {"514"},
			"distinguishedName":  {u("bob")},
		}},
		{u("dave@partner.org"), map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"objectCategory":     {"CN=Person,CN=Schema,CN=Configuration," + testBase},
			"cn":                 {"dave@partner.org"},
			"name":               {"dave@partner.org"},
			"sAMAccountName":     {"dave@partner.org"},
			"userPrincipalName":  {"dave@partner.org"},
			"displayName":        {"dave@partner.org"},
			"userAccountControl": {"512"},
			"distinguishedName":  {u("dave@partner.org")},
		}},
		{g("Staff"), map[string][]string{ // "staff" from carol joins "Staff"
			"objectClass":       {"top", "group"},
			"objectCategory":    {"CN=Group,CN=Schema,CN=Configuration," + testBase},
			"cn":                {"Staff"},
			"name":              {"Staff"},
			"sAMAccountName":    {"Staff"},
			"member":            {u("alice"), u("carol")},
			"distinguishedName": {g("Staff")},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.dn, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: tc.dn, Scope: ScopeBase, Filter: "(objectClass=*)"})
			if err != nil || len(es) != 1 {
				t.Fatalf("got %d entries, %v, want 1 entry", len(es), err)
			}
			if got := es[0].Attrs; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v,\nwant %v", got, tc.want)
			}
		})
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		base   string
		domain string
		users  []User
		want   error
	}{
		{"unparseable base", "dc=clinic,,", testDomain, nil, ErrInvalidDN},
		{"empty base", "", testDomain, nil, ErrInvalidDN},
		{"base not dc", "ou=x,dc=clinic,dc=local", testDomain, nil, ErrInvalidDN},
		{"multi-valued first rdn", "dc=a+dc=b,dc=local", testDomain, nil, ErrInvalidDN},
		{"empty domain", testBase, "", nil, ErrInvalidInput},
		{"domain with space", testBase, "clinic local", nil, ErrInvalidInput},
		{"domain with @", testBase, "a@clinic.local", nil, ErrInvalidInput},
		{"empty user name", testBase, testDomain, []User{{Name: ""}}, ErrInvalidInput},
		{"duplicate user ignoring case", testBase, testDomain, []User{{Name: "alice"}, {Name: "ALICE"}}, ErrInvalidInput},
		{"empty group name", testBase, testDomain, []User{{Name: "alice", Groups: []string{""}}}, ErrInvalidInput},
		{"user name not UTF-8", testBase, testDomain, []User{{Name: "a\xff"}}, ErrInvalidInput},
		{"too many entries", testBase, testDomain, make([]User, MaxEntries-2), ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Build(tc.base, tc.domain, tc.users)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, %v, want error %v", tr, err, tc.want)
			}
		})
	}
}

func TestBuildDoesNotModifyInput(t *testing.T) {
	users := testUsers()
	want := testUsers()
	if _, err := Build(testBase, testDomain, users); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(users, want) {
		t.Errorf("got users %v after Build, want %v", users, want)
	}
}

func TestEscapeRDNValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"Smith, John", `Smith\, John`},
		{"a+b", `a\+b`},
		{`say "hi"`, `say \"hi\"`},
		{`back\slash`, `back\\slash`},
		{"<a>", `\<a\>`},
		{"a;b", `a\;b`},
		{"a=b", `a\=b`},
		{" lead", `\ lead`},
		{"trail ", `trail\ `},
		{"#lead", `\#lead`},
		{"mid#dle", "mid#dle"},
		{"nul\x00", `nul\00`},
		{"Müller", "Müller"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := escapeRDNValue(tc.in)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			d, err := parseDN("cn=" + got)
			if err != nil {
				t.Fatalf("parse %q: %v", got, err)
			}
			if v := d.RDNs[0].Attributes[0].Value; v != tc.in {
				t.Errorf("round trip: got %q, want %q", v, tc.in)
			}
		})
	}
}

func TestNormDN(t *testing.T) {
	tests := []struct {
		a, b  string
		equal bool
	}{
		{"cn=alice,ou=Users,dc=clinic,dc=local", "CN=Alice,OU=USERS,DC=Clinic,DC=Local", true},
		{"cn=alice,ou=Users,dc=clinic,dc=local", "cn=alice , ou = Users ,dc=clinic,  dc=local", true},
		{`cn=Smith\, John,ou=Users`, `CN=smith\2c john,OU=users`, true},
		{"cn=a+sn=b,dc=x", "SN=B+CN=A,DC=X", true},
		{`cn=\ lead,dc=x`, "cn=lead,dc=x", false},
		{"cn=alice,dc=x", "cn=alice,dc=y", false},
		{"cn=a,b=c", `cn=a\,b=c`, false},
		{"", "  ", true},
	}
	for _, tc := range tests {
		t.Run(tc.a+" vs "+tc.b, func(t *testing.T) {
			na, err := normDN(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			nb, err := normDN(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if got := na == nb; got != tc.equal {
				t.Errorf("got equal=%v (%q, %q), want %v", got, na, nb, tc.equal)
			}
		})
	}
	for _, bad := range []string{"cn", "cn=a,", "=a", `cn=a\`, "cn=a\"b", strings.Repeat("x", maxDNLen+1)} {
		t.Run("invalid "+bad[:min(len(bad), 20)], func(t *testing.T) {
			if got, err := normDN(bad); err == nil {
				t.Errorf("got %q, nil, want an error", got)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	tr := testTree(t)
	all := append(append([]string{testBase, usersOU, groupsOU}, allUsers...), allGroups...)
	tests := []struct {
		name  string
		base  string
		scope Scope
		want  []string
	}{
		{"base of base", testBase, ScopeBase, []string{testBase}},
		{"one of base", testBase, ScopeOne, []string{usersOU, groupsOU}},
		{"sub of base", testBase, ScopeSub, all},
		{"base of OU", usersOU, ScopeBase, []string{usersOU}},
		{"one of users OU", usersOU, ScopeOne, allUsers},
		{"sub of users OU", usersOU, ScopeSub, append([]string{usersOU}, allUsers...)},
		{"one of groups OU", groupsOU, ScopeOne, allGroups},
		{"base of user", u("alice"), ScopeBase, []string{u("alice")}},
		{"one of user", u("alice"), ScopeOne, []string{}},
		{"sub of user", u("alice"), ScopeSub, []string{u("alice")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := search(t, tr, Query{BaseDN: tc.base, Scope: tc.scope, Filter: "(objectClass=*)"})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v,\nwant %v", got, tc.want)
			}
		})
	}
}

func TestBaseDNIsNormalized(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		base string
		want string
	}{
		{"CN=ALICE,OU=USERS,DC=CLINIC,DC=LOCAL", u("alice")},
		{" cn = alice , ou=Users,  dc=clinic ,dc=local ", u("alice")},
		{`cn=smith\, john,ou=users,dc=clinic,dc=local`, u(`Smith\, John`)},
		{`cn=Smith\2C John,ou=Users,dc=clinic,dc=local`, u(`Smith\, John`)},
		{`cn=\#lead,ou=Users,dc=clinic,dc=local`, u(`\#lead`)},
		{`cn=\23lead,ou=Users,dc=clinic,dc=local`, u(`\#lead`)},
		{`cn=*)(uid\=*,ou=Users,dc=clinic,dc=local`, u(`*)(uid\=*`)},
		{"DC=Clinic, DC=Local", testBase},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			got := search(t, tr, Query{BaseDN: tc.base, Scope: ScopeBase, Filter: "(objectClass=*)"})
			if want := []string{tc.want}; !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	tr := testTree(t)
	enabled := []string{u(`\#lead`), u(`*)(uid\=*`), u("alice"), u("carol"), u("dave@partner.org"), u(`Smith\, John`)}
	everything := append(append([]string{testBase, usersOU, groupsOU}, allUsers...), allGroups...)
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		// equalityMatch
		{"equality", "(sAMAccountName=alice)", []string{u("alice")}},
		{"equality ignores case of name and value", "(SAMACCOUNTNAME=ALICE)", []string{u("alice")}},
		{"equality on cn of a group", "(cn=nurses)", []string{g("Nurses")}},
		{"equality on upn", "(userPrincipalName=Alice@Clinic.Local)", []string{u("alice")}},
		{"equality on upn with own domain", "(userPrincipalName=dave@partner.org)", []string{u("dave@partner.org")}},
		{"equality on displayName", "(displayName=alice anders)", []string{u("alice")}},
		{"equality on escaped comma", `(cn=Smith\2c John)`, []string{u(`Smith\, John`)}},
		{"equality on leading #", "(sAMAccountName=#lead)", []string{u(`\#lead`)}},
		{"equality no match", "(sAMAccountName=nobody)", []string{}},
		{"equality on objectClass", "(objectClass=organizationalUnit)", []string{usersOU, groupsOU}},
		{"equality on dc", "(dc=CLINIC)", []string{testBase}},
		{"equality on distinguishedName", "(distinguishedName=CN=ALICE, OU=USERS,DC=CLINIC,DC=LOCAL)", []string{u("alice")}},
		{"equality on integer is numeric", "(userAccountControl=0514)", []string{u("bob")}},
		{"equality on integer with non-integer", "(userAccountControl=abc)", []string{}},
		{"memberOf in other case", "(memberOf=CN=Nurses,OU=Groups,DC=clinic,DC=local)", []string{u("alice"), u("bob")}},
		{"member", "(member=cn=carol,ou=users,dc=clinic,dc=local)", []string{g("Doctors"), g("Staff")}},
		{"memberOf not a DN", "(memberOf=Nurses)", []string{}},
		{"objectCategory short person", "(objectCategory=person)", allUsers},
		{"objectCategory short user", "(objectCategory=User)", allUsers},
		{"objectCategory short group", "(objectCategory=group)", allGroups},
		{"objectCategory full DN", "(objectCategory=cn=person,cn=schema,cn=configuration,DC=Clinic,DC=Local)", allUsers},
		{"objectCategory unknown class", "(objectCategory=computer)", []string{}},
		// substrings
		{"substring initial", "(sAMAccountName=a*)", []string{u("alice")}},
		{"substring final", "(sAMAccountName=*OL)", []string{u("carol")}},
		{"substring any", "(sAMAccountName=*ar*)", []string{u("carol"), u("dave@partner.org")}},
		{"substring initial any final", "(displayName=a*e*s)", []string{u("alice")}},
		{"substring any in order", "(sAMAccountName=*l*e*)", []string{u(`\#lead`), u("alice")}},
		{"substring any out of order", "(sAMAccountName=*e*l*)", []string{}},
		{"substring initial and final may not overlap", "(sAMAccountName=ali*ice)", []string{}},
		{"substring initial and final touching", "(sAMAccountName=al*ice)", []string{u("alice")}},
		{"substring any may not overlap", "(sAMAccountName=*l*l*)", []string{}},
		{"substring on DN value", "(memberOf=cn=nurses*)", []string{u("alice"), u("bob")}},
		{"substring escaped star", `(cn=\2a*)`, []string{u(`*)(uid\=*`)}},
		// present
		{"present", "(memberOf=*)", []string{u("alice"), u("bob"), u("carol"), u(`Smith\, John`)}},
		{"present on member", "(MEMBER=*)", allGroups},
		{"present unknown attribute", "(mail=*)", []string{}},
		{"not present unknown attribute is true", "(&(objectClass=user)(!(mail=*)))", allUsers},
		// greaterOrEqual, lessOrEqual
		{"greaterOrEqual string", "(&(objectClass=user)(sAMAccountName>=C))", []string{u("carol"), u("dave@partner.org"), u(`Smith\, John`)}},
		{"lessOrEqual string", "(&(objectClass=user)(sAMAccountName<=B))", []string{u(`\#lead`), u(`*)(uid\=*`), u("alice")}},
		{"lessOrEqual string inclusive", "(&(objectClass=user)(sAMAccountName<=bob))", []string{u(`\#lead`), u(`*)(uid\=*`), u("alice"), u("bob")}},
		{"greaterOrEqual integer", "(userAccountControl>=513)", []string{u("bob")}},
		{"greaterOrEqual integer is numeric", "(userAccountControl>=1000)", []string{}},
		{"lessOrEqual integer", "(userAccountControl<=512)", enabled},
		// approxMatch
		{"approx is equality", "(sAMAccountName~=ALICE)", []string{u("alice")}},
		// and, or, not
		{"and", "(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))", []string{u("alice")}},
		{"or", "(|(sAMAccountName=alice)(sAMAccountName=bob))", []string{u("alice"), u("bob")}},
		{"not", "(&(objectClass=user)(!(memberOf=*)))", []string{u(`\#lead`), u(`*)(uid\=*`), u("dave@partner.org")}},
		{"empty and is true", "(&)", everything},
		{"empty or is false", "(|)", []string{}},
		{"and short-circuits on index", "(&(sAMAccountName=alice)(objectClass=group))", []string{}},
		{"or of index and scan", "(|(sAMAccountName=alice)(objectClass=group))", append([]string{u("alice")}, allGroups...)},
		// extensibleMatch
		{"bit and disabled", "(userAccountControl:1.2.840.113556.1.4.803:=2)", []string{u("bob")}},
		{"not bit and disabled", "(&(objectCategory=person)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", enabled},
		{"bit and needs all bits", "(userAccountControl:1.2.840.113556.1.4.803:=515)", []string{}},
		{"bit or", "(userAccountControl:1.2.840.113556.1.4.804:=3)", []string{u("bob")}},
		{"bit or any bit", "(userAccountControl:1.2.840.113556.1.4.804:=514)", allUsers},
		{"bit and on string attribute", "(cn:1.2.840.113556.1.4.803:=2)", []string{}},
		{"bit and with non-integer", "(userAccountControl:1.2.840.113556.1.4.803:=x)", []string{}},
		{"in chain memberOf", "(memberOf:1.2.840.113556.1.4.1941:=CN=Staff,OU=Groups,DC=clinic,DC=local)", []string{u("alice"), u("carol")}},
		{"in chain member", "(member:1.2.840.113556.1.4.1941:=cn=alice,ou=users,dc=clinic,dc=local)", []string{g("Nurses"), g("Staff")}},
		{"in chain on string attribute", "(cn:1.2.840.113556.1.4.1941:=cn=alice)", []string{}},
		{"rule-less extensible is equality", "(sAMAccountName:=alice)", []string{u("alice")}},
		{"unsupported rule", "(cn:2.5.13.5:=alice)", []string{}},
		{"unsupported rule under not", "(!(cn:2.5.13.5:=alice))", []string{}},
		{"rule without attribute", "(:1.2.840.113556.1.4.803:=2)", []string{}},
		{"dn attributes flag", "(userAccountControl:dn:1.2.840.113556.1.4.803:=2)", []string{u("bob")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := search(t, tr, Query{BaseDN: testBase, Scope: ScopeSub, Filter: tc.filter})
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s:\ngot  %v,\nwant %v", tc.filter, got, tc.want)
			}
		})
	}
}

// TestUnknownAttributeIsUndefined checks RFC 4511 three-valued logic: an
// unrecognized attribute is Undefined, and not(Undefined) is Undefined, so
// a negated unknown never opens the whole directory.
func TestUnknownAttributeIsUndefined(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"unknown", "(mail=alice@clinic.local)", []string{}},
		{"not unknown", "(!(mail=x))", []string{}},
		{"not not unknown", "(!(!(mail=x)))", []string{}},
		{"and with unknown", "(&(sAMAccountName=alice)(mail=x))", []string{}},
		// and(Undefined, False) is False for everyone but alice, whose and
		// is and(Undefined, True) = Undefined: not turns only the Falses true.
		{"not of and with unknown", "(&(objectClass=user)(!(&(mail=x)(sAMAccountName=alice))))", []string{u(`\#lead`), u(`*)(uid\=*`), u("bob"), u("carol"), u("dave@partner.org"), u(`Smith\, John`)}},
		{"or with unknown", "(|(mail=x)(sAMAccountName=alice))", []string{u("alice")}},
		{"not of or with unknown", "(!(|(mail=x)(sAMAccountName=alice)))", []string{}},
		{"not of known absent is true", "(&(objectClass=user)(!(memberOf=cn=nurses,ou=groups,dc=clinic,dc=local)))", []string{u(`\#lead`), u(`*)(uid\=*`), u("carol"), u("dave@partner.org"), u(`Smith\, John`)}},
		{"option on attribute is unknown", "(cn;lang-en=alice)", []string{}},
		{"empty attribute is unknown", "(=alice)", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := search(t, tr, Query{BaseDN: testBase, Scope: ScopeSub, Filter: tc.filter})
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s:\ngot  %v,\nwant %v", tc.filter, got, tc.want)
			}
		})
	}
}

func TestInjectionLookingNameIsFoundOnlyByEscapedFilter(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		name    string
		filter  string
		want    []string
		wantErr error
	}{
		{"escaped equality", `(sAMAccountName=\2a\29\28uid=\2a)`, []string{u(`*)(uid\=*`)}, nil},
		{"raw value is a bad filter", "(sAMAccountName=*)(uid=*)", nil, ErrBadFilter},
		{"raw value inside and", "(&(sAMAccountName=*)(uid=*))", []string{}, nil},
		{"raw value as substring", "(sAMAccountName=*)(uid=*", nil, ErrBadFilter},
		{"half escaped", `(sAMAccountName=*\29\28uid=*)`, []string{u(`*)(uid\=*`)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: testBase, Scope: ScopeSub, Filter: tc.filter})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if got := dns(es); tc.wantErr == nil && !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDisabledUserHasAccountDisableBit(t *testing.T) {
	tr := testTree(t)
	es, err := tr.Search(Query{BaseDN: u("bob"), Scope: ScopeBase, Filter: "(objectClass=*)", Attributes: []string{"userAccountControl"}})
	if err != nil || len(es) != 1 {
		t.Fatalf("got %v, %v, want bob", es, err)
	}
	if got, want := es[0].Values("useraccountcontrol"), []string{"514"}; !slices.Equal(got, want) {
		t.Errorf("got userAccountControl %v, want %v", got, want)
	}
	got := search(t, tr, Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(userAccountControl:1.2.840.113556.1.4.803:=2)"})
	if want := []string{u("bob")}; !slices.Equal(got, want) {
		t.Errorf("got %v, want only the disabled user %v", got, want)
	}
}

func TestFilterDepthLimit(t *testing.T) {
	tr := testTree(t)
	nested := func(n int) string {
		return strings.Repeat("(&", n) + "(sAMAccountName=alice)" + strings.Repeat(")", n)
	}
	tests := []struct {
		name   string
		filter string
		want   error
	}{
		{"32 nested and", nested(32), nil},
		{"33 nested and", nested(33), ErrFilterTooDeep},
		{"33 nested not", strings.Repeat("(!", 33) + "(cn=a)" + strings.Repeat(")", 33), ErrFilterTooDeep},
		{"huge nesting refused before compiling", nested(5000), ErrFilterTooDeep},
		{"redundant parentheses do not count", "((((((((cn=alice))))))))", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: testBase, Scope: ScopeSub, Filter: tc.filter})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == nil && len(es) != 1 {
				t.Errorf("got %v, want alice", dns(es))
			}
		})
	}
}

func TestBadFilters(t *testing.T) {
	tr := testTree(t)
	for _, f := range []string{
		"", "cn=alice", "(cn=alice", "(cn=alice))", "(cn=alice)(cn=bob)", `(cn=\zz)`, `(cn=a\)`,
		"(&(cn=a)", "(!(cn=a)(cn=b))", "(cn~alice)", "()", "(\xff=a)",
		"(|" + strings.Repeat("(cn=a)", maxFilterItems) + ")",
		"(cn=" + strings.Repeat("a", maxFilterLen) + ")",
	} {
		t.Run(f[:min(len(f), 30)], func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: testBase, Scope: ScopeSub, Filter: f})
			if !errors.Is(err, ErrBadFilter) {
				t.Errorf("got %d entries, %v, want %v", len(es), err, ErrBadFilter)
			}
		})
	}
}

func TestSearchErrors(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		name string
		q    Query
		want error
	}{
		{"base not in tree", Query{BaseDN: "cn=nobody,ou=Users," + testBase, Scope: ScopeSub, Filter: "(cn=*)"}, ErrNoSuchObject},
		{"base outside tree", Query{BaseDN: "dc=other,dc=local", Scope: ScopeBase, Filter: "(cn=*)"}, ErrNoSuchObject},
		{"base does not parse", Query{BaseDN: "cn=alice,,", Scope: ScopeBase, Filter: "(cn=*)"}, ErrInvalidDN},
		{"base with bad escape", Query{BaseDN: `cn=a\zz`, Scope: ScopeBase, Filter: "(cn=*)"}, ErrInvalidDN},
		{"rootDSE one level", Query{Scope: ScopeOne, Filter: "(objectClass=*)"}, ErrNoSuchObject},
		{"rootDSE subtree", Query{Scope: ScopeSub, Filter: "(objectClass=*)"}, ErrNoSuchObject},
		{"unknown scope", Query{BaseDN: testBase, Scope: 3, Filter: "(cn=*)"}, ErrInvalidInput},
		{"negative scope", Query{BaseDN: testBase, Scope: -1, Filter: "(cn=*)"}, ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(tc.q)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, %v, want %v", dns(es), err, tc.want)
			}
			if len(es) != 0 {
				t.Errorf("got %d entries with an error, want none", len(es))
			}
		})
	}
}

func TestRootDSE(t *testing.T) {
	tr := testTree(t)
	want := map[string][]string{
		"objectClass":          {"top"},
		"namingContexts":       {testBase},
		"defaultNamingContext": {testBase},
		"supportedLDAPVersion": {"3"},
		"vendorName":           {"clinicgate"},
	}
	tests := []struct {
		name   string
		base   string
		filter string
		attrs  []string
		want   map[string][]string
	}{
		{"all attributes", "", "(objectClass=*)", nil, want},
		{"whitespace base", "  ", "(objectClass=*)", nil, want},
		{"selected", "", "(objectClass=*)", []string{"namingcontexts", "supportedControl"}, map[string][]string{"namingContexts": {testBase}}},
		{"filter on rootDSE", "", "(supportedLDAPVersion=3)", []string{"1.1"}, map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: tc.base, Scope: ScopeBase, Filter: tc.filter, Attributes: tc.attrs})
			if err != nil || len(es) != 1 {
				t.Fatalf("got %v, %v, want one entry", es, err)
			}
			if es[0].DN != "" {
				t.Errorf("got DN %q, want empty", es[0].DN)
			}
			if !reflect.DeepEqual(es[0].Attrs, tc.want) {
				t.Errorf("got %v, want %v", es[0].Attrs, tc.want)
			}
		})
	}
	got := search(t, tr, Query{Scope: ScopeBase, Filter: "(vendorName=other)"})
	if len(got) != 0 {
		t.Errorf("got %v for a non-matching rootDSE filter, want nothing", got)
	}
}

func TestSizeLimit(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		name    string
		limit   int
		want    []string
		wantErr error
	}{
		{"below matches", 2, allUsers[:2], ErrSizeLimitExceeded},
		{"one", 1, allUsers[:1], ErrSizeLimitExceeded},
		{"exactly the matches", len(allUsers), allUsers, nil},
		{"above matches", 100, allUsers, nil},
		{"zero is unlimited", 0, allUsers, nil},
		{"negative is unlimited", -1, allUsers, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(objectClass=user)", SizeLimit: tc.limit})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("got error %v, want %v", err, tc.wantErr)
			}
			if got := dns(es); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAttributeSelection(t *testing.T) {
	tr := testTree(t)
	allKeys := []string{"cn", "displayName", "distinguishedName", "memberOf", "name", "objectCategory", "objectClass", "sAMAccountName", "userAccountControl", "userPrincipalName"}
	tests := []struct {
		name  string
		attrs []string
		want  []string
	}{
		{"nil is all", nil, allKeys},
		{"star is all", []string{"*"}, allKeys},
		{"star with others is all", []string{"cn", "*"}, allKeys},
		{"1.1 is none", []string{"1.1"}, []string{}},
		{"1.1 with others is the others", []string{"1.1", "cn"}, []string{"cn"}},
		{"named, case-insensitive, canonical spelling", []string{"SAMACCOUNTNAME", "memberof"}, []string{"memberOf", "sAMAccountName"}},
		{"unknown names skipped", []string{"mail", "objectGUID", "cn"}, []string{"cn"}},
		{"absent attribute skipped", []string{"member", "ou"}, []string{}},
		{"plus adds nothing", []string{"+"}, []string{}},
		{"duplicates", []string{"cn", "CN"}, []string{"cn"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: u("alice"), Scope: ScopeBase, Filter: "(objectClass=*)", Attributes: tc.attrs})
			if err != nil || len(es) != 1 {
				t.Fatalf("got %v, %v, want alice", es, err)
			}
			got := []string{}
			for k, v := range es[0].Attrs {
				got = append(got, k)
				if len(v) == 0 {
					t.Errorf("attribute %s has no values", k)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTypesOnly(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		name  string
		attrs []string
		want  map[string][]string
	}{
		{"selected", []string{"cn", "memberOf"}, map[string][]string{"cn": {}, "memberOf": {}}},
		{"none", []string{"1.1"}, map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := tr.Search(Query{BaseDN: u("alice"), Scope: ScopeBase, Filter: "(cn=alice)", Attributes: tc.attrs, TypesOnly: true})
			if err != nil || len(es) != 1 {
				t.Fatalf("got %v, %v, want alice", es, err)
			}
			if !reflect.DeepEqual(es[0].Attrs, tc.want) {
				t.Errorf("got %v, want %v", es[0].Attrs, tc.want)
			}
		})
	}
}

func TestEntryValuesIsCaseInsensitive(t *testing.T) {
	e := Entry{Attrs: map[string][]string{"sAMAccountName": {"alice"}}}
	tests := []struct {
		name string
		want []string
	}{
		{"sAMAccountName", []string{"alice"}},
		{"samaccountname", []string{"alice"}},
		{"mail", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.Values(tc.name); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSearchCannotModifyTree: entries are copies, so a caller editing a
// result changes nothing for the next search.
func TestSearchCannotModifyTree(t *testing.T) {
	tr := testTree(t)
	q := Query{BaseDN: u("alice"), Scope: ScopeBase, Filter: "(objectClass=*)"}
	es, err := tr.Search(q)
	if err != nil {
		t.Fatal(err)
	}
	es[0].Attrs["memberOf"][0] = "cn=Admins,ou=Groups," + testBase
	es[0].Attrs["userAccountControl"] = []string{"66048"}
	es[0].DN = "cn=root"
	again, err := tr.Search(q)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again[0].Attrs["memberOf"], []string{g("Nurses"), g("Staff")}; !slices.Equal(got, want) {
		t.Errorf("got memberOf %v, want %v", got, want)
	}
	if got, want := again[0].Attrs["userAccountControl"], []string{"512"}; !slices.Equal(got, want) {
		t.Errorf("got userAccountControl %v, want %v", got, want)
	}
	if got := search(t, tr, Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(memberOf=cn=admins,ou=groups,dc=clinic,dc=local)"}); len(got) != 0 {
		t.Errorf("got %v, want nobody in Admins", got)
	}
}

// TestIndexAgreesWithScan: every indexed equality answers exactly what the
// same assertion answers when the index cannot be used.
func TestIndexAgreesWithScan(t *testing.T) {
	tr := testTree(t)
	var values []string
	for _, n := range tr.nodes {
		for _, a := range []attrID{attrSAMAccountName, attrUserPrincipalName, attrCN} {
			if v := n.attrs[a]; v != nil {
				values = append(values, v.raw...)
			}
		}
	}
	values = append(values, "nobody", "ALICE", "")
	for _, attr := range []string{"sAMAccountName", "userPrincipalName", "cn"} {
		for _, v := range values {
			item := "(" + attr + "=" + escapeFilter(v) + ")"
			t.Run(item, func(t *testing.T) {
				for _, scope := range []Scope{ScopeSub, ScopeOne, ScopeBase} {
					for _, base := range []string{testBase, usersOU, groupsOU, u("alice")} {
						q := Query{BaseDN: base, Scope: scope}
						q.Filter = "(&(objectClass=*)" + item + ")"
						indexed := search(t, tr, q)
						q.Filter = "(|" + item + ")"
						scanned := search(t, tr, q)
						if !slices.Equal(indexed, scanned) {
							t.Errorf("base %s scope %d: got %v from the index, want %v", base, scope, indexed, scanned)
						}
					}
				}
			})
		}
	}
}

func escapeFilter(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '(', ')', '\\', 0:
			fmt.Fprintf(&b, `\%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestConcurrentSearch(t *testing.T) {
	tr := testTree(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				es, err := tr.Search(Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(|(sAMAccountName=alice)(memberOf=*))"})
				if err != nil {
					errs <- err
					return
				}
				if len(es) != 4 {
					errs <- fmt.Errorf("goroutine %d: got %d entries, want 4", i, len(es))
					return
				}
				es[0].Attrs["cn"][0] = "changed"
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func bigTree(b testing.TB, n int) *Tree {
	b.Helper()
	users := make([]User, n)
	for i := range users {
		users[i] = User{
			Name:        fmt.Sprintf("user%d", i),
			DisplayName: fmt.Sprintf("User Number %d", i),
			Disabled:    i%50 == 0,
			Groups:      []string{fmt.Sprintf("group%d", i%20), "All Staff"},
		}
	}
	tr, err := Build(testBase, testDomain, users)
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

func TestBigTree(t *testing.T) {
	tr := bigTree(t, 5000)
	if got, want := tr.Len(), 3+5000+21; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	tests := []struct {
		filter string
		want   int
	}{
		{"(&(objectClass=user)(sAMAccountName=user4711))", 1},
		{"(objectClass=user)", 5000},
		{"(userAccountControl:1.2.840.113556.1.4.803:=2)", 100},
		{"(memberOf=cn=group7,ou=groups,dc=clinic,dc=local)", 250},
		{"(member=cn=user4711,ou=users,dc=clinic,dc=local)", 2},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			if got := search(t, tr, Query{BaseDN: testBase, Scope: ScopeSub, Filter: tc.filter, Attributes: []string{"1.1"}}); len(got) != tc.want {
				t.Errorf("got %d entries, want %d", len(got), tc.want)
			}
		})
	}
}

func BenchmarkSearchBySAMAccountName(b *testing.B) {
	tr := bigTree(b, 5000)
	q := Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(&(objectClass=user)(sAMAccountName=user4711))"}
	b.ReportAllocs()
	for b.Loop() {
		es, err := tr.Search(q)
		if err != nil || len(es) != 1 {
			b.Fatalf("got %d entries, %v, want 1", len(es), err)
		}
	}
}

func BenchmarkSearchAllUsers(b *testing.B) {
	tr := bigTree(b, 5000)
	q := Query{BaseDN: testBase, Scope: ScopeSub, Filter: "(objectClass=user)"}
	b.ReportAllocs()
	for b.Loop() {
		es, err := tr.Search(q)
		if err != nil || len(es) != 5000 {
			b.Fatalf("got %d entries, %v, want 5000", len(es), err)
		}
	}
}

// FuzzSearch feeds arbitrary filters and base DNs to Search: it must never
// panic, every error must be one of the sentinels, and results stay within
// the tree.
func FuzzSearch(f *testing.F) {
	tr := testTree(f)
	for _, s := range [][2]string{
		{"(objectClass=*)", testBase},
		{"(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))", testBase},
		{`(sAMAccountName=\2a\29\28uid=\2a)`, "ou=Users," + testBase},
		{"(userAccountControl:1.2.840.113556.1.4.803:=2)", "DC=Clinic, DC=Local"},
		{"(memberOf:1.2.840.113556.1.4.1941:=CN=Nurses,OU=Groups,DC=clinic,DC=local)", testBase},
		{"(!(|(mail=x)(cn=a*b*c)))", `cn=Smith\, John,ou=Users,dc=clinic,dc=local`},
		{"(cn>=m)", `cn=\#lead,ou=Users,dc=clinic,dc=local`},
		{"(cn~=x)", ""},
		{"(userAccountControl:dn:1.2.840.113556.1.4.804:=2147483648)", "dc=clinic,dc=local"},
		{"(&)", "cn=#04024869,dc=x"},
	} {
		f.Add(s[0], s[1], 0, 0)
	}
	sentinels := []error{ErrInvalidDN, ErrNoSuchObject, ErrBadFilter, ErrFilterTooDeep, ErrSizeLimitExceeded, ErrInvalidInput}
	f.Fuzz(func(t *testing.T, filter, base string, scope, limit int) {
		es, err := tr.Search(Query{BaseDN: base, Scope: Scope(scope), Filter: filter, SizeLimit: limit})
		if err != nil && !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
			t.Fatalf("got error %v, want one wrapping a sentinel", err)
		}
		if len(es) > tr.Len()+1 {
			t.Fatalf("got %d entries from a tree of %d", len(es), tr.Len())
		}
		if limit > 0 && len(es) > limit {
			t.Fatalf("got %d entries, want at most %d", len(es), limit)
		}
	})
}
