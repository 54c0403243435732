package vdir

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Search runs q against the tree. Entries come in tree order (base, the
// OUs, users by name, groups by name). With q.SizeLimit > 0 and more
// matches than that, it returns the first SizeLimit entries and
// ErrSizeLimitExceeded; every other error comes with no entries.
func (t *Tree) Search(q Query) ([]Entry, error) {
	base, err := normDN(q.BaseDN)
	if err != nil {
		return nil, fmt.Errorf("base %q: %w: %v", q.BaseDN, ErrInvalidDN, err)
	}
	if q.Scope != ScopeBase && q.Scope != ScopeOne && q.Scope != ScopeSub {
		return nil, fmt.Errorf("scope %d: %w", q.Scope, ErrInvalidInput)
	}
	f, err := t.compileFilter(q.Filter)
	if err != nil {
		return nil, err
	}
	sel := selectAttrs(q.Attributes)

	if base == "" {
		if q.Scope != ScopeBase {
			return nil, fmt.Errorf("the rootDSE has no children: %w", ErrNoSuchObject)
		}
		if t.eval(f, &t.rootDSE) != triTrue {
			return []Entry{}, nil
		}
		return []Entry{entry(&t.rootDSE, sel, q.TypesOnly)}, nil
	}
	bi, ok := t.byDN[base]
	if !ok {
		return nil, fmt.Errorf("base %q: %w", q.BaseDN, ErrNoSuchObject)
	}

	var cands []int
	switch {
	case q.Scope == ScopeBase:
		cands = []int{bi}
	case q.Scope == ScopeOne:
		cands = t.children[bi]
	default:
		if c, ok := t.indexed(f); ok {
			cands = c
		}
	}

	out := []Entry{}
	consider := func(i int) bool { // false: stop
		n := &t.nodes[i]
		if !t.inScope(i, bi, q.Scope) || t.eval(f, n) != triTrue {
			return true
		}
		if q.SizeLimit > 0 && len(out) == q.SizeLimit {
			err = ErrSizeLimitExceeded
			return false
		}
		out = append(out, entry(n, sel, q.TypesOnly))
		return true
	}
	if cands != nil || q.Scope != ScopeSub {
		for _, i := range cands {
			if !consider(i) {
				break
			}
		}
	} else {
		for i := range t.nodes {
			if !consider(i) {
				break
			}
		}
	}
	return out, err
}

// inScope reports whether node i is within scope of node base.
func (t *Tree) inScope(i, base int, s Scope) bool {
	switch s {
	case ScopeBase:
		return i == base
	case ScopeOne:
		return t.nodes[i].parent == base
	}
	for ; i >= 0; i = t.nodes[i].parent {
		if i == base {
			return true
		}
	}
	return false
}

// indexed returns the candidate entries for a filter that is, or is an
// and containing, an equality on an indexed attribute: the shortest such
// list. The full filter is still evaluated on every candidate, so the index
// only ever narrows the scan. ok is false when no index applies.
func (t *Tree) indexed(f *filt) (cands []int, ok bool) {
	lookup := func(f *filt) ([]int, bool) {
		if f.op != ldap.FilterEqualityMatch || !f.known || !f.valOK {
			return nil, false
		}
		idx, ok := t.eqIndex[f.attr]
		if !ok {
			return nil, false
		}
		return idx[f.val], true
	}
	if c, ok := lookup(f); ok {
		return nonNil(c), true
	}
	if f.op != ldap.FilterAnd {
		return nil, false
	}
	for _, k := range f.kids {
		if c, found := lookup(k); found && (!ok || len(c) < len(cands)) {
			cands, ok = c, true
		}
	}
	return nonNil(cands), ok
}

func nonNil(c []int) []int {
	if c == nil {
		return []int{}
	}
	return c
}

// selection is the attribute list of a query, resolved once.
type selection struct {
	ids []attrID // in canonical order when all were asked for
}

// selectAttrs resolves requested attribute names. Nothing or "*" means all
// user attributes; "1.1" alone means none; "+" and unknown names add
// nothing (there are no operational attributes to return).
func selectAttrs(names []string) selection {
	all := func() selection {
		s := selection{ids: make([]attrID, numAttrs)}
		for i := range s.ids {
			s.ids[i] = attrID(i)
		}
		return s
	}
	if len(names) == 0 {
		return all()
	}
	var s selection
	for _, name := range names {
		name = strings.TrimSpace(name)
		if name == "*" {
			return all()
		}
		if a, ok := lookupAttr(name); ok && !slices.Contains(s.ids, a) {
			s.ids = append(s.ids, a)
		}
	}
	return s
}

// entry copies a node out with the selected attributes, so callers can
// never reach the tree's own slices. All values share one backing array
// (each attribute's slice capped, so an append reallocates rather than
// spilling into its neighbour): one allocation instead of one per attribute.
func entry(n *node, sel selection, typesOnly bool) Entry {
	ids := sel.ids
	count, total := 0, 0
	for _, a := range ids {
		if v := n.attrs[a]; v != nil {
			count++
			total += len(v.raw)
		}
	}
	e := Entry{DN: n.dn, Attrs: make(map[string][]string, count)}
	var backing []string
	if !typesOnly {
		backing = make([]string, 0, total)
	}
	for _, a := range ids {
		v := n.attrs[a]
		switch {
		case v == nil:
		case typesOnly:
			e.Attrs[a.name()] = []string{}
		default:
			start := len(backing)
			backing = append(backing, v.raw...)
			e.Attrs[a.name()] = backing[start:len(backing):len(backing)]
		}
	}
	return e
}
