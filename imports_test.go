// Package clinicgate_test holds the one test of the whole tree's shape;
// the binary is cmd/clinicgate.
package clinicgate_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/clinicgate/clinicgate"

// allowed lists, for every package of this module, the module's packages
// it may import, its tests included (paths relative to the module; a
// trailing "/..." allows a whole subtree). A new package must be added
// here: that is the moment to decide where it sits. The rules it encodes
// (docs/architecture.md):
//   - dependencies point inward: the core (appliance/...) imports no door,
//     no console and no wiring;
//   - the doors (radius, ldapproxy) import the core but never each other,
//     and reach the store only through the gate: never appliance/store,
//     not even in their tests, which build their core with
//     appliance/appliancetest;
//   - the console (tui) reaches the appliance only through the admin
//     service: never appliance/store;
//   - only internal/daemon and cmd/clinicgate wire everything together.
var allowed = map[string][]string{
	// Leaves: they import nothing of the module.
	"appliance/atomicfile":            nil,
	"appliance/config":                nil,
	"appliance/mfa":                   {"appliance/secrets", "appliance/mfa/mfatest"},
	"appliance/mfa/mfatest":           nil,
	"appliance/passwd":                nil,
	"appliance/policy":                nil,
	"appliance/secrets":               nil,
	"appliance/upstream/upstreamtest": nil,
	"internal/msgauth":                nil,
	"internal/ratelog":                nil,
	"appliance/hostcfg":               {"appliance/atomicfile"},
	"internal/sntp":                   {"internal/sntp/sntptest"},
	"internal/sntp/sntptest":          {"internal/sntp"},
	"internal/reload":                 nil,
	"ldapproxy/ldapmsg":               nil,
	"appliance/directory/vdir":        nil,

	// The core.
	"appliance/store": {"appliance/policy", "appliance/secrets"},
	// The appliance's self-signed certificates (LDAP, EAP), written atomically.
	"internal/selfcert": {"appliance/atomicfile"},
	// Wi-Fi profiles: the EAP certificate's public part, no key (the test
	// makes one with selfcert).
	"internal/wifiprofile": {"internal/selfcert"},
	"appliance/audit":      {"appliance/store"},
	// Forwarding the audit off the box (RFC 5425); auditfwdtest is a
	// test CA and collector, a leaf.
	"appliance/auditfwd":              {"appliance/audit", "appliance/store", "appliance/auditfwd/auditfwdtest"},
	"appliance/auditfwd/auditfwdtest": nil,
	// Encrypted backups and their restore: a snapshot of the store, its
	// key, the audit chain checked before anything is installed.
	"appliance/backup":  {"appliance/audit", "appliance/secrets", "appliance/store", "appliance/admin"},
	"appliance/dirsync": {"appliance/audit", "appliance/store"},
	// Continuous replication off the box (Litestream over SFTP); sftptest
	// is a real OpenSSH server for its tests and the end-to-end ones.
	"appliance/replica":          {"appliance/secrets", "appliance/admin", "appliance/backup", "appliance/store", "appliance/replica/sftptest"},
	"appliance/replica/sftptest": nil,
	// MDM connectors and their syncer; mdmtest is the cloud APIs'
	// stand-ins, a leaf for tests and benchmarks.
	"appliance/posture":         {"appliance/audit", "appliance/policy", "appliance/store", "appliance/posture/mdmtest"},
	"appliance/posture/mdmtest": nil,
	// The device CA: issuing against one-time challenges, the CRL. Its
	// tests build a core with appliancetest and make challenges with admin.
	"appliance/pki": {"appliance/atomicfile", "appliance/audit", "appliance/store", "appliance/secrets", "appliance/policy", "internal/selfcert",
		"appliance/appliancetest", "appliance/admin"},
	// The LDAP door's directory: the store's users, or the LDAP upstream.
	"appliance/directory": {"appliance/store", "appliance/upstream", "appliance/directory/vdir", "internal/reload"},
	"appliance/upstream":  {"appliance/passwd", "appliance/secrets", "appliance/store", "internal/msgauth", "appliance/upstream/upstreamtest"},
	"appliance": {"appliance/audit", "appliance/mfa", "appliance/passwd", "appliance/policy", "appliance/secrets",
		"appliance/store", "appliance/upstream", "appliance/directory/...", "internal/ratelog", "internal/reload",
		"appliance/admin", "appliance/appliancetest", "appliance/mfa/mfatest"},
	"appliance/admin": {"appliance", "appliance/atomicfile", "appliance/replica", "appliance/backup", "internal/wifiprofile", "appliance/audit", "appliance/dirsync", "appliance/mfa", "appliance/passwd", "appliance/posture",
		"appliance/policy", "appliance/secrets", "appliance/store", "appliance/upstream", "internal/msgauth", "internal/selfcert",
		"internal/eapclient", "appliance/pki", "appliance/auditfwd", "appliance/auditfwd/auditfwdtest", "appliance/hostcfg"},
	"appliance/appliancetest": {"appliance", "appliance/admin", "appliance/audit", "appliance/passwd", "appliance/store", "appliance/upstream"},

	// The doors: the gate (appliance) and its records, the admin service
	// and appliancetest to set up their tests, and the leaves they share.
	"radius": {"appliance", "appliance/appliancetest", "appliance/admin", "appliance/policy", "appliance/secrets", "appliance/mfa", "appliance/mfa/mfatest",
		"internal/msgauth", "internal/ratelog", "eap", "eap/eaptest"},
	// The RADIUS door's EAP server: the gate and the leaves.
	"eap": {"appliance", "appliance/appliancetest", "appliance/admin", "appliance/policy",
		"appliance/secrets", "internal/reload", "internal/selfcert", "internal/tlspipe", "eap/eaptest"},
	// The EAP server's test kit: a small PKI and a stand-in gate.
	"eap/eaptest": {"appliance"},
	"ldapproxy": {"appliance", "appliance/appliancetest", "appliance/admin", "appliance/audit", "appliance/mfa",
		"appliance/passwd", "appliance/policy", "appliance/secrets", "appliance/atomicfile",
		"appliance/directory", "ldapproxy/ldapmsg", "internal/ratelog", "internal/selfcert"},

	// The SCEP door: the device CA's enroller, never the store; its tests
	// build a core with appliancetest.
	"scepserver": {"appliance/pki", "appliance/appliancetest", "appliance/admin", "internal/selfcert"},

	// The console: the admin service and the plain types it speaks in.
	"tui": {"appliance", "appliance/admin", "appliance/replica", "appliance/atomicfile", "appliance/audit", "appliance/policy", "appliance/hostcfg",
		"appliance/secrets", "appliance/upstream"},

	// An EAP-TTLS/PAP client, a leaf the console's test login (admin) and
	// the benchmarks use; its tests run it against the RADIUS door and the
	// EAP server in process.
	"internal/tlspipe":   nil,
	"internal/eapclient": {"internal/msgauth", "internal/tlspipe", "appliance", "appliance/policy", "eap", "radius", "internal/selfcert"},

	// Wiring.
	"internal/daemon": {"appliance/...", "eap", "eap/eaptest", "ldapproxy", "radius", "scepserver", "tui", "internal/selfcert", "internal/wifiprofile", "internal/msgauth", "internal/sntp", "internal/sntp/sntptest"},
	"cmd/clinicgate":  {"appliance/...", "eap", "internal/daemon", "internal/selfcert", "internal/wifiprofile", "ldapproxy", "scepserver", "tui"},
	"e2e":             {"appliance/...", "eap", "eap/eaptest", "internal/msgauth", "internal/eapclient", "internal/selfcert", "ldapproxy", "scepserver"},
	"":                nil, // this package
}

// forbidden are imports no allow-list entry may ever grant, checked
// separately so that a careless widening of the list above still fails.
var forbidden = []struct{ pkg, imp, why string }{
	{"tui", "appliance/store", "the console reaches the appliance only through the admin service"},
	{"radius", "appliance/store", "a door reaches the store only through the gate"},
	{"ldapproxy", "appliance/store", "a door reaches the store only through the gate"},
	{"scepserver", "appliance/store", "a door reaches the store only through the core"},
	{"radius", "ldapproxy", "doors never import each other"},
	{"ldapproxy", "radius", "doors never import each other"},
}

func under(pkg, root string) bool {
	if r, ok := strings.CutSuffix(root, "/..."); ok {
		return pkg == r || strings.HasPrefix(pkg, r+"/")
	}
	return pkg == root
}

// TestImportsFollowTheAllowList enforces the layout of docs/architecture.md
// for every package of the module, test imports included.
func TestImportsFollowTheAllowList(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}|{{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		pkg := strings.TrimPrefix(strings.TrimPrefix(path, mod), "/")
		allow, known := allowed[pkg]
		if !known {
			t.Errorf("package %q is not in imports_test.go's allow-list: add it with the module packages it may import", pkg)
			continue
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			if imp != mod && !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(imp, mod), "/")
			if rel == pkg {
				continue // an external test package importing its own package
			}
			for _, f := range forbidden {
				if under(pkg, f.pkg) && under(rel, f.imp) {
					t.Errorf("%s imports %s: %s", pkg, rel, f.why)
				}
			}
			if !slices.ContainsFunc(allow, func(a string) bool { return under(rel, a) }) {
				t.Errorf("%s imports %s, which its allow-list in imports_test.go does not grant", pkg, rel)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("go list returned %d packages; the check saw too little to mean anything", checked)
	}
}

// TestForbiddenImportsAreCaught shows the check is not vacuous: the
// forbidden pairs are refused by the allow-list itself.
func TestForbiddenImportsAreCaught(t *testing.T) {
	for _, f := range forbidden {
		if slices.ContainsFunc(allowed[f.pkg], func(a string) bool { return under(f.imp, a) }) {
			t.Errorf("the allow-list of %s grants %s, which must never be: %s", f.pkg, f.imp, f.why)
		}
	}
}
