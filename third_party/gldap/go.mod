module github.com/jimlambrt/gldap

go 1.22

require (
	github.com/go-asn1-ber/asn1-ber v1.5.7
	github.com/go-ldap/ldap/v3 v3.4.8
	github.com/hashicorp/go-hclog v1.6.3
)

require (
	github.com/Azure/go-ntlmssp v0.0.0-20221128193559-754e69321358 // indirect
	github.com/fatih/color v1.13.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-colorable v0.1.12 // indirect
	github.com/mattn/go-isatty v0.0.14 // indirect
	golang.org/x/crypto v0.21.0 // indirect
	golang.org/x/sys v0.18.0 // indirect
)
