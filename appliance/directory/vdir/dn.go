package vdir

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// maxDNLen bounds the DNs a caller can make us parse; real DNs are far
// shorter, and the bound keeps a hostile base DN cheap to refuse.
const maxDNLen = 16 << 10

// fold is the one case folding used on both sides of every comparison and
// for every index key, so stored and asserted values always meet.
func fold(s string) string { return strings.ToLower(s) }

// escapeRDNValue escapes an attribute value for use in a DN string per
// RFC 4514 section 2.4: the specials , + " \ < > ; and =, a leading space
// or '#', a trailing space, and NUL (as \00).
func escapeRDNValue(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 4)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == 0:
			b.WriteString(`\00`)
			continue
		case c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=':
			b.WriteByte('\\')
		case i == 0 && (c == ' ' || c == '#'):
			b.WriteByte('\\')
		case i == len(v)-1 && c == ' ':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parseDN wraps ldap.ParseDN with a length bound and rejects empty
// attribute types, which ParseDN lets through in some malformed inputs.
func parseDN(s string) (*ldap.DN, error) {
	if len(s) > maxDNLen {
		return nil, fmt.Errorf("dn longer than %d bytes", maxDNLen)
	}
	d, err := ldap.ParseDN(s)
	if err != nil {
		return nil, err
	}
	for _, rdn := range d.RDNs {
		if rdn == nil || len(rdn.Attributes) == 0 {
			return nil, errors.New("empty rdn")
		}
		for _, ava := range rdn.Attributes {
			if ava == nil || strings.TrimSpace(ava.Type) == "" {
				return nil, errors.New("empty attribute type")
			}
		}
	}
	return d, nil
}

// normDN returns the canonical form of a DN: attribute types and values
// lowercased, whitespace around RDN parts dropped, values re-escaped per
// RFC 4514, multi-valued RDNs sorted. Two DNs name the same entry exactly
// when their normDN strings are equal. The empty DN normalizes to "".
func normDN(s string) (string, error) {
	d, err := parseDN(s)
	if err != nil {
		return "", err
	}
	return canonDN(d), nil
}

func canonDN(d *ldap.DN) string {
	var b strings.Builder
	for i, rdn := range d.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		avas := make([]string, len(rdn.Attributes))
		for j, ava := range rdn.Attributes {
			avas[j] = escapeRDNValue(fold(strings.TrimSpace(ava.Type))) + "=" + escapeRDNValue(fold(ava.Value))
		}
		slices.Sort(avas)
		b.WriteString(strings.Join(avas, "+"))
	}
	return b.String()
}

// renderDN writes a parsed DN back out with the caller's spelling of types
// and values but without stray whitespace, so "dc=clinic, dc=local" is
// shown as "dc=clinic,dc=local".
func renderDN(d *ldap.DN) string {
	var b strings.Builder
	for i, rdn := range d.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, ava := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(escapeRDNValue(strings.TrimSpace(ava.Type)))
			b.WriteByte('=')
			b.WriteString(escapeRDNValue(ava.Value))
		}
	}
	return b.String()
}
