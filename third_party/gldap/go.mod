module github.com/jimlambrt/gldap

go 1.21.13

require (
	github.com/go-asn1-ber/asn1-ber v1.5.7
	github.com/go-ldap/ldap/v3 v3.4.8
	github.com/hashicorp/go-hclog v1.6.3
)
