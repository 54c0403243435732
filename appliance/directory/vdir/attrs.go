package vdir

// attrID names one attribute the directory knows. The set is closed: an
// attribute outside it is unrecognized, which RFC 4511 makes Undefined in a
// filter and which attribute selection silently skips.
type attrID int8

const (
	attrObjectClass attrID = iota
	attrObjectCategory
	attrDC
	attrOU
	attrCN
	attrName
	attrSAMAccountName
	attrUserPrincipalName
	attrDisplayName
	attrMemberOf
	attrMember
	attrUserAccountControl
	attrDistinguishedName
	attrNamingContexts
	attrDefaultNamingContext
	attrSupportedLDAPVersion
	attrSupportedControl
	attrVendorName
	numAttrs
)

// syntax decides how values of an attribute compare.
type syntax int8

const (
	syntaxString syntax = iota // case-insensitive string (AD's default for these)
	syntaxDN                   // distinguishedNameMatch on normalized DNs
	syntaxInt                  // integerMatch
)

// name returns the canonical AD spelling.
func (a attrID) name() string {
	switch a {
	case attrObjectClass:
		return "objectClass"
	case attrObjectCategory:
		return "objectCategory"
	case attrDC:
		return "dc"
	case attrOU:
		return "ou"
	case attrCN:
		return "cn"
	case attrName:
		return "name"
	case attrSAMAccountName:
		return "sAMAccountName"
	case attrUserPrincipalName:
		return "userPrincipalName"
	case attrDisplayName:
		return "displayName"
	case attrMemberOf:
		return "memberOf"
	case attrMember:
		return "member"
	case attrUserAccountControl:
		return "userAccountControl"
	case attrDistinguishedName:
		return "distinguishedName"
	case attrNamingContexts:
		return "namingContexts"
	case attrDefaultNamingContext:
		return "defaultNamingContext"
	case attrSupportedLDAPVersion:
		return "supportedLDAPVersion"
	case attrSupportedControl:
		return "supportedControl"
	case attrVendorName:
		return "vendorName"
	}
	return ""
}

func (a attrID) syntax() syntax {
	switch a {
	case attrObjectCategory, attrMemberOf, attrMember, attrDistinguishedName,
		attrNamingContexts, attrDefaultNamingContext:
		return syntaxDN
	case attrUserAccountControl, attrSupportedLDAPVersion:
		return syntaxInt
	}
	return syntaxString
}

// lookupAttr resolves an attribute description case-insensitively.
// Descriptions with options (cn;lang-en) are not recognized.
func lookupAttr(desc string) (attrID, bool) {
	d := fold(desc)
	for a := attrID(0); a < numAttrs; a++ {
		if fold(a.name()) == d {
			return a, true
		}
	}
	return 0, false
}
