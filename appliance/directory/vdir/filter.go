package vdir

import (
	"fmt"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// tri is RFC 4511's three-valued filter result. Only triTrue returns an
// entry; triUndef survives not, so (!(unknown=x)) matches nothing.
type tri int8

const (
	triFalse tri = iota
	triTrue
	triUndef
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// Matching rules understood in extensible matches; all AD's.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// filt is a compiled filter: attributes resolved, assertions folded and
// parsed for the attribute's syntax once per search, not once per entry.
type filt struct {
	op    ber.Tag // ldap.FilterAnd … ldap.FilterExtensibleMatch
	kids  []*filt
	attr  attrID
	known bool // attr is recognized; if not the item is Undefined

	val   string // folded assertion
	valOK bool   // the assertion is valid for the attribute's syntax
	dn    string // syntaxDN: normalized assertion
	num   int64  // syntaxInt: parsed assertion

	initial, final  string // substrings, folded
	hasInit, hasFin bool
	any             []string

	rule string // extensible match
}

// compileFilter parses an RFC 4515 string with go-ldap and converts the
// packet tree into a filt, enforcing the depth and size bounds.
func (t *Tree) compileFilter(s string) (*filt, error) {
	if s == "" {
		return nil, fmt.Errorf("empty filter: %w", ErrBadFilter)
	}
	if len(s) > maxFilterLen {
		return nil, fmt.Errorf("filter longer than %d bytes: %w", maxFilterLen, ErrBadFilter)
	}
	// go-ldap compiles recursively and unboundedly; refuse absurd nesting
	// before handing it over. Parentheses are an upper bound on nesting
	// (redundant ones and unescaped ones in values only add), so the exact
	// limit is enforced on the packet tree below.
	depth, maxDepth := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
			maxDepth = max(maxDepth, depth)
		case ')':
			depth--
		}
	}
	if maxDepth > 4*MaxFilterDepth {
		return nil, fmt.Errorf("%d nested parentheses: %w", maxDepth, ErrFilterTooDeep)
	}
	p, err := ldap.CompileFilter(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	items := 0
	return t.compile(p, 0, &items)
}

func (t *Tree) compile(p *ber.Packet, depth int, items *int) (*filt, error) {
	if p == nil || p.ClassType != ber.ClassContext {
		return nil, fmt.Errorf("malformed filter packet: %w", ErrBadFilter)
	}
	*items++
	if *items > maxFilterItems {
		return nil, fmt.Errorf("more than %d filter items: %w", maxFilterItems, ErrBadFilter)
	}
	f := &filt{op: p.Tag}
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		if depth+1 > MaxFilterDepth {
			return nil, fmt.Errorf("and/or/not nested more than %d deep: %w", MaxFilterDepth, ErrFilterTooDeep)
		}
		if p.Tag == ldap.FilterNot && len(p.Children) != 1 {
			return nil, fmt.Errorf("not with %d operands: %w", len(p.Children), ErrBadFilter)
		}
		for _, c := range p.Children {
			k, err := t.compile(c, depth+1, items)
			if err != nil {
				return nil, err
			}
			f.kids = append(f.kids, k)
		}
		return f, nil

	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		if len(p.Children) != 2 {
			return nil, fmt.Errorf("comparison with %d parts: %w", len(p.Children), ErrBadFilter)
		}
		attr, ok1 := str(p.Children[0])
		val, ok2 := str(p.Children[1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("comparison without strings: %w", ErrBadFilter)
		}
		if p.Tag == ldap.FilterApproxMatch {
			f.op = ldap.FilterEqualityMatch // AD's approxMatch is equality
		}
		f.setAttr(attr)
		t.setValue(f, val)
		return f, nil

	case ldap.FilterPresent:
		attr, ok := str(p)
		if !ok {
			return nil, fmt.Errorf("present without attribute: %w", ErrBadFilter)
		}
		f.setAttr(attr)
		return f, nil

	case ldap.FilterSubstrings:
		if len(p.Children) != 2 || p.Children[1] == nil {
			return nil, fmt.Errorf("substrings with %d parts: %w", len(p.Children), ErrBadFilter)
		}
		attr, ok := str(p.Children[0])
		if !ok {
			return nil, fmt.Errorf("substrings without attribute: %w", ErrBadFilter)
		}
		f.setAttr(attr)
		parts := p.Children[1].Children
		for i, c := range parts {
			v, ok := str(c)
			if !ok {
				return nil, fmt.Errorf("substring without value: %w", ErrBadFilter)
			}
			v = fold(v)
			switch {
			case c.Tag == ldap.FilterSubstringsInitial && i == 0:
				f.initial, f.hasInit = v, true
			case c.Tag == ldap.FilterSubstringsFinal && i == len(parts)-1:
				f.final, f.hasFin = v, true
			case c.Tag == ldap.FilterSubstringsAny:
				f.any = append(f.any, v)
			default:
				return nil, fmt.Errorf("substrings out of order: %w", ErrBadFilter)
			}
		}
		return f, nil

	case ldap.FilterExtensibleMatch:
		var attr, val string
		var hasVal bool
		for _, c := range p.Children {
			if c == nil {
				return nil, fmt.Errorf("malformed extensible match: %w", ErrBadFilter)
			}
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				f.rule, _ = str(c)
			case ldap.MatchingRuleAssertionType:
				attr, _ = str(c)
			case ldap.MatchingRuleAssertionMatchValue:
				val, hasVal = str(c)
			case ldap.MatchingRuleAssertionDNAttributes:
				// dnAttributes adds matches on DN components; none of the
				// supported rules apply to them, so it changes nothing.
			default:
				return nil, fmt.Errorf("malformed extensible match: %w", ErrBadFilter)
			}
		}
		if !hasVal {
			return nil, fmt.Errorf("extensible match without value: %w", ErrBadFilter)
		}
		f.rule = strings.TrimSpace(f.rule)
		if attr != "" {
			f.setAttr(attr)
			t.setValue(f, val)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unknown filter choice %d: %w", p.Tag, ErrBadFilter)
}

func str(p *ber.Packet) (string, bool) {
	if p == nil {
		return "", false
	}
	s, ok := p.Value.(string)
	return s, ok
}

func (f *filt) setAttr(desc string) {
	f.attr, f.known = lookupAttr(strings.TrimSpace(desc))
}

// setValue prepares an assertion for the attribute's syntax. An assertion
// that is not valid for the syntax (a non-integer for userAccountControl, a
// non-DN for memberOf) leaves valOK false, which evaluates to Undefined.
func (t *Tree) setValue(f *filt, v string) {
	f.val = fold(v)
	if !f.known {
		return
	}
	switch f.attr.syntax() {
	case syntaxInt:
		f.num, f.valOK = parseInt(strings.TrimSpace(v))
	case syntaxDN:
		if n, err := normDN(v); err == nil && n != "" {
			f.dn, f.valOK = n, true
		} else if f.attr == attrObjectCategory {
			// AD accepts a class name here: (objectCategory=person).
			f.dn, f.valOK = t.catDN[fold(strings.TrimSpace(v))]
		}
	default:
		f.valOK = true
	}
}

// eval applies f to n with RFC 4511 three-valued logic.
func (t *Tree) eval(f *filt, n *node) tri {
	switch f.op {
	case ldap.FilterAnd:
		r := triTrue // (&) is absolute true, RFC 4526
		for _, k := range f.kids {
			switch t.eval(k, n) {
			case triFalse:
				return triFalse
			case triUndef:
				r = triUndef
			}
		}
		return r
	case ldap.FilterOr:
		r := triFalse // (|) is absolute false
		for _, k := range f.kids {
			switch t.eval(k, n) {
			case triTrue:
				return triTrue
			case triUndef:
				r = triUndef
			}
		}
		return r
	case ldap.FilterNot:
		switch t.eval(f.kids[0], n) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUndef
	case ldap.FilterPresent:
		// Present is never Undefined: an unknown attribute is simply absent.
		return triOf(f.known && n.attrs[f.attr] != nil)
	}

	if !f.known {
		return triUndef
	}
	v := n.attrs[f.attr]
	switch f.op {
	case ldap.FilterEqualityMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		if !f.valOK {
			return triUndef
		}
		if v == nil {
			return triFalse
		}
		return triOf(compare(f, f.op, v))
	case ldap.FilterSubstrings:
		if v == nil {
			return triFalse
		}
		for _, s := range v.folded {
			if substrMatch(f, s) {
				return triTrue
			}
		}
		return triFalse
	case ldap.FilterExtensibleMatch:
		return t.extensible(f, n)
	}
	return triUndef
}

// compare reports whether any value satisfies an equality or ordering
// assertion under the attribute's syntax.
func compare(f *filt, op ber.Tag, v *values) bool {
	for i := range v.raw {
		var c int
		switch f.attr.syntax() {
		case syntaxInt:
			if !v.intOK[i] {
				continue
			}
			c = cmpInt(v.ints[i], f.num)
		case syntaxDN:
			if op == ldap.FilterEqualityMatch {
				if v.dn[i] == f.dn {
					return true
				}
				continue
			}
			c = strings.Compare(v.folded[i], f.val)
		default:
			c = strings.Compare(v.folded[i], f.val)
		}
		switch op {
		case ldap.FilterEqualityMatch:
			if c == 0 {
				return true
			}
		case ldap.FilterGreaterOrEqual:
			if c >= 0 {
				return true
			}
		case ldap.FilterLessOrEqual:
			if c <= 0 {
				return true
			}
		}
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// substrMatch matches initial, then each any in order, then final, none of
// them overlapping: the final is taken off the end first, and each any is
// found leftmost in what is left, which is optimal.
func substrMatch(f *filt, s string) bool {
	if f.hasInit {
		if !strings.HasPrefix(s, f.initial) {
			return false
		}
		s = s[len(f.initial):]
	}
	if f.hasFin {
		if !strings.HasSuffix(s, f.final) {
			return false
		}
		s = s[:len(s)-len(f.final)]
	}
	for _, a := range f.any {
		i := strings.Index(s, a)
		if i < 0 {
			return false
		}
		s = s[i+len(a):]
	}
	return true
}

// extensible evaluates the AD matching rules and a rule-less (attr:=value).
// Any other rule, or one without an attribute, is Undefined: we cannot tell, so it never matches,
// not even under not.
func (t *Tree) extensible(f *filt, n *node) tri {
	if !f.known || !f.valOK {
		return triUndef
	}
	switch f.rule {
	case "":
		// (cn:=alice) uses the attribute's own equality rule.
		v := n.attrs[f.attr]
		return triOf(v != nil && compare(f, ldap.FilterEqualityMatch, v))
	case ruleBitAnd, ruleBitOr:
		if f.attr.syntax() != syntaxInt {
			return triUndef
		}
		v := n.attrs[f.attr]
		if v == nil {
			return triFalse
		}
		for i, x := range v.ints {
			if !v.intOK[i] {
				continue
			}
			if f.rule == ruleBitAnd && x&f.num == f.num || f.rule == ruleBitOr && x&f.num != 0 {
				return triTrue
			}
		}
		return triFalse
	case ruleInChain:
		if f.attr.syntax() != syntaxDN {
			return triUndef
		}
		return triOf(t.inChain(n, f.attr, f.dn))
	}
	return triUndef
}

// inChain follows attr (memberOf or member) from n through the entries it
// names, transitively, and reports whether target is reached.
func (t *Tree) inChain(n *node, attr attrID, target string) bool {
	v := n.attrs[attr]
	if v == nil {
		return false
	}
	queue := append([]string(nil), v.dn...)
	seen := make(map[string]bool)
	for len(queue) > 0 {
		dn := queue[0]
		queue = queue[1:]
		if dn == target {
			return true
		}
		if seen[dn] {
			continue
		}
		seen[dn] = true
		if i, ok := t.byDN[dn]; ok {
			if w := t.nodes[i].attrs[attr]; w != nil {
				queue = append(queue, w.dn...)
			}
		}
	}
	return false
}
