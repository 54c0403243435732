package vdir

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Search and Build wrap them with detail; callers match
// with errors.Is and map them to LDAP result codes.
var (
	// ErrInvalidDN: a DN does not parse (LDAP invalidDNSyntax).
	ErrInvalidDN = errors.New("vdir: invalid dn")
	// ErrNoSuchObject: the search base is not in the tree (LDAP noSuchObject).
	ErrNoSuchObject = errors.New("vdir: no such object")
	// ErrBadFilter: the filter does not compile or exceeds the size bounds.
	ErrBadFilter = errors.New("vdir: bad filter")
	// ErrFilterTooDeep: and/or/not nested deeper than MaxFilterDepth.
	ErrFilterTooDeep = errors.New("vdir: filter nested too deep")
	// ErrSizeLimitExceeded: more entries matched than Query.SizeLimit; it is
	// returned together with the first SizeLimit entries.
	ErrSizeLimitExceeded = errors.New("vdir: size limit exceeded")
	// ErrInvalidInput: Build was given a bad domain, user or group, or too
	// many entries; Search was given an unknown scope.
	ErrInvalidInput = errors.New("vdir: invalid input")
)

const (
	// MaxEntries is the largest tree Build accepts, counting the base and
	// the two OUs.
	MaxEntries = 100000
	// MaxFilterDepth is how deeply and/or/not may nest: 32 nested (&...)
	// around an item are accepted, 33 are refused.
	MaxFilterDepth = 32
	// maxFilterLen and maxFilterItems bound the work one search can ask for.
	maxFilterLen   = 64 << 10
	maxFilterItems = 2048
	maxNameLen     = 256
	vendor         = "clinicgate"
)

// Entry is one search result. Attrs keys are canonical AD spellings
// (sAMAccountName); use Values for a case-insensitive lookup. An Entry is a
// copy: changing it does not change the Tree.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Values returns the values of the attribute named name, matched
// case-insensitively, or nil.
func (e Entry) Values(name string) []string {
	if v, ok := e.Attrs[name]; ok {
		return v
	}
	for k, v := range e.Attrs {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// User is the input Build turns into a user object. It is deliberately not
// the store's type, so the directory cannot leak fields it was not given.
type User struct {
	Name        string // sAMAccountName and cn; a name containing "@" is also the UPN
	DisplayName string // defaults to Name
	Disabled    bool
	Groups      []string // group names (cn under ou=Groups)
}

// Scope is an LDAP search scope, numbered as on the wire.
type Scope int

const (
	ScopeBase Scope = 0 // the base entry only
	ScopeOne  Scope = 1 // the base's direct children
	ScopeSub  Scope = 2 // the base and everything below it
)

// Query is one search request.
type Query struct {
	BaseDN     string
	Scope      Scope
	Filter     string   // RFC 4515 string, e.g. "(sAMAccountName=alice)"
	Attributes []string // nil or "*": all; "1.1": none; else the named ones
	SizeLimit  int      // > 0: at most this many entries, then ErrSizeLimitExceeded
	TypesOnly  bool     // attribute names without values
}

// values holds one attribute of one entry with its comparison forms
// precomputed at Build, so a search only folds the assertion.
type values struct {
	raw    []string
	folded []string // fold(raw)
	dn     []string // syntaxDN: normDN(raw), "" where it does not parse
	ints   []int64  // syntaxInt: parsed raw
	intOK  []bool
}

type node struct {
	dn     string
	parent int // index into Tree.nodes; -1 for the base
	attrs  [numAttrs]*values
}

// Tree is an immutable directory built by Build. All methods are safe for
// concurrent use.
type Tree struct {
	nodes    []node // tree order: base, ou=Users, ou=Groups, users, groups
	children [][]int
	byDN     map[string]int              // normDN → index
	eqIndex  map[attrID]map[string][]int // fold(value) → indexes, ascending
	rootDSE  node
	catDN    map[string]string // short objectCategory name → normalized DN
}

// Len returns the number of entries in the tree (the rootDSE not counted).
func (t *Tree) Len() int { return len(t.nodes) }

// Build makes a Tree for baseDN (e.g. "dc=clinic,dc=local", whose first
// RDN must be a single dc=) and domain (the DNS name in userPrincipalName).
// User names must be unique ignoring case.
func Build(baseDN, domain string, users []User) (*Tree, error) {
	d, err := parseDN(baseDN)
	if err != nil {
		return nil, fmt.Errorf("base %q: %w: %v", baseDN, ErrInvalidDN, err)
	}
	if len(d.RDNs) == 0 {
		return nil, fmt.Errorf("base is empty: %w", ErrInvalidDN)
	}
	first := d.RDNs[0].Attributes
	if len(first) != 1 || !strings.EqualFold(strings.TrimSpace(first[0].Type), "dc") || first[0].Value == "" {
		return nil, fmt.Errorf("base %q must start with a single dc= component: %w", baseDN, ErrInvalidDN)
	}
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	if len(users) > MaxEntries-3 {
		return nil, fmt.Errorf("%d users, more than %d entries: %w", len(users), MaxEntries, ErrInvalidInput)
	}

	base := renderDN(d)
	t := &Tree{
		byDN:    make(map[string]int),
		eqIndex: make(map[attrID]map[string][]int),
	}
	configDN := "CN=Schema,CN=Configuration," + base
	personCat := "CN=Person," + configDN
	groupCat := "CN=Group," + configDN
	t.catDN = map[string]string{
		"person": mustNorm(personCat),
		"user":   mustNorm(personCat), // AD maps user to its defaultObjectCategory, Person
		"group":  mustNorm(groupCat),
	}

	// Validate and sort users; collect groups (first spelling wins).
	us := make([]User, len(users))
	copy(us, users)
	seen := make(map[string]bool, len(us))
	groups := make(map[string]string)
	for i, u := range us {
		if err := checkName("user", u.Name); err != nil {
			return nil, err
		}
		if seen[fold(u.Name)] {
			return nil, fmt.Errorf("user %q appears twice: %w", u.Name, ErrInvalidInput)
		}
		seen[fold(u.Name)] = true
		if !utf8.ValidString(u.DisplayName) {
			return nil, fmt.Errorf("user %q: display name is not UTF-8: %w", u.Name, ErrInvalidInput)
		}
		var gs []string
		for _, g := range u.Groups {
			if err := checkName("group", g); err != nil {
				return nil, fmt.Errorf("user %q: %w", u.Name, err)
			}
			if _, ok := groups[fold(g)]; !ok {
				groups[fold(g)] = g
			}
			if !slices.Contains(gs, fold(g)) {
				gs = append(gs, fold(g))
			}
		}
		us[i].Groups = gs // folded keys from here on
	}
	if n := 3 + len(us) + len(groups); n > MaxEntries {
		return nil, fmt.Errorf("%d entries, more than %d: %w", n, MaxEntries, ErrInvalidInput)
	}
	slices.SortFunc(us, func(a, b User) int { return cmp.Compare(fold(a.Name), fold(b.Name)) })
	groupKeys := make([]string, 0, len(groups))
	for k := range groups {
		groupKeys = append(groupKeys, k)
	}
	slices.Sort(groupKeys)

	usersDN := "ou=Users," + base
	groupsDN := "ou=Groups," + base
	userDN := func(name string) string { return "cn=" + escapeRDNValue(name) + "," + usersDN }
	groupDN := func(name string) string { return "cn=" + escapeRDNValue(name) + "," + groupsDN }

	members := make(map[string][]string, len(groups))
	for _, u := range us {
		for _, g := range u.Groups {
			members[g] = append(members[g], userDN(u.Name))
		}
	}

	c := normCache{}
	a := map[attrID][]string{
		attrObjectClass: {"top", "domain", "domainDNS"},
		attrDC:          {first[0].Value},
	}
	if err := t.add(base, -1, a, c); err != nil {
		return nil, err
	}
	for _, ou := range []string{"Users", "Groups"} {
		a := map[attrID][]string{
			attrObjectClass: {"top", "organizationalUnit"},
			attrOU:          {ou},
		}
		if err := t.add("ou="+ou+","+base, 0, a, c); err != nil {
			return nil, err
		}
	}
	for _, u := range us {
		upn := u.Name
		if !strings.Contains(upn, "@") {
			upn += "@" + domain
		}
		display := u.DisplayName
		if display == "" {
			display = u.Name
		}
		uac := "512" // NORMAL_ACCOUNT
		if u.Disabled {
			uac = "514" // NORMAL_ACCOUNT | ACCOUNTDISABLE
		}
		slices.Sort(u.Groups) // the groups' own order, not input order
		memberOf := make([]string, 0, len(u.Groups))
		for _, g := range u.Groups {
			memberOf = append(memberOf, groupDN(groups[g]))
		}
		a := map[attrID][]string{
			attrObjectClass:        {"top", "person", "organizationalPerson", "user"},
			attrObjectCategory:     {personCat},
			attrCN:                 {u.Name},
			attrName:               {u.Name},
			attrSAMAccountName:     {u.Name},
			attrUserPrincipalName:  {upn},
			attrDisplayName:        {display},
			attrMemberOf:           memberOf,
			attrUserAccountControl: {uac},
		}
		if err := t.add(userDN(u.Name), 1, a, c); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	for _, g := range groupKeys {
		name := groups[g]
		a := map[attrID][]string{
			attrObjectClass:    {"top", "group"},
			attrObjectCategory: {groupCat},
			attrCN:             {name},
			attrName:           {name},
			attrSAMAccountName: {name},
			attrMember:         members[g],
		}
		if err := t.add(groupDN(name), 2, a, c); err != nil {
			return nil, fmt.Errorf("group %q: %w", name, err)
		}
	}

	t.children = make([][]int, len(t.nodes))
	for i, n := range t.nodes {
		if n.parent >= 0 {
			t.children[n.parent] = append(t.children[n.parent], i)
		}
	}
	for _, id := range []attrID{attrSAMAccountName, attrUserPrincipalName, attrCN} {
		idx := make(map[string][]int)
		for i := range t.nodes {
			if v := t.nodes[i].attrs[id]; v != nil {
				for _, f := range v.folded {
					if l := idx[f]; len(l) == 0 || l[len(l)-1] != i {
						idx[f] = append(l, i)
					}
				}
			}
		}
		t.eqIndex[id] = idx
	}

	t.rootDSE = makeNode("", -1, map[attrID][]string{
		attrObjectClass:          {"top"}, // so the usual (objectClass=*) finds it
		attrNamingContexts:       {base},
		attrDefaultNamingContext: {base},
		attrSupportedLDAPVersion: {"3"},
		attrVendorName:           {vendor},
	}, c)
	return t, nil
}

// add appends an entry, checking that its DN parses and is unique, so
// every stored DN can be found again by Search.
func (t *Tree) add(dn string, parent int, a map[attrID][]string, c normCache) error {
	norm, err := c.norm(dn)
	if err != nil {
		return fmt.Errorf("dn %q: %w: %v", dn, ErrInvalidDN, err)
	}
	if _, dup := t.byDN[norm]; dup {
		return fmt.Errorf("dn %q appears twice: %w", dn, ErrInvalidInput)
	}
	a[attrDistinguishedName] = []string{dn}
	t.byDN[norm] = len(t.nodes)
	t.nodes = append(t.nodes, makeNode(dn, parent, a, c))
	return nil
}

func makeNode(dn string, parent int, a map[attrID][]string, c normCache) node {
	n := node{dn: dn, parent: parent}
	for id, raw := range a {
		if len(raw) == 0 {
			continue // AD omits empty attributes
		}
		v := &values{raw: raw, folded: make([]string, len(raw))}
		for i, r := range raw {
			v.folded[i] = fold(r)
		}
		switch id.syntax() {
		case syntaxDN:
			v.dn = make([]string, len(raw))
			for i, r := range raw {
				v.dn[i], _ = c.norm(r) // every stored DN was built by us and parses
			}
		case syntaxInt:
			v.ints = make([]int64, len(raw))
			v.intOK = make([]bool, len(raw))
			for i, r := range raw {
				v.ints[i], v.intOK[i] = parseInt(r)
			}
		}
		n.attrs[id] = v
	}
	return n
}

// normCache memoizes normDN during Build, where the same user and group
// DNs recur in every member and memberOf list.
type normCache map[string]string

func (c normCache) norm(dn string) (string, error) {
	if n, ok := c[dn]; ok {
		return n, nil
	}
	n, err := normDN(dn)
	if err != nil {
		return "", err
	}
	c[dn] = n
	return n, nil
}

func mustNorm(dn string) string {
	n, _ := normDN(dn) // built from a base that already parsed
	return n
}

// parseInt reads an LDAP integer; AD also accepts unsigned 32-bit flags
// such as 2147483648 in bit filters.
func parseInt(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return int64(n), true
	}
	return 0, false
}

func checkDomain(domain string) error {
	if domain == "" || len(domain) > 253 || !utf8.ValidString(domain) {
		return fmt.Errorf("domain %q: want a DNS name like clinic.local: %w", domain, ErrInvalidInput)
	}
	for _, r := range domain {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '@' {
			return fmt.Errorf("domain %q: want a DNS name like clinic.local: %w", domain, ErrInvalidInput)
		}
	}
	return nil
}

func checkName(kind, name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("%s name %q: want 1 to %d bytes of UTF-8: %w", kind, name, maxNameLen, ErrInvalidInput)
	}
	return nil
}
