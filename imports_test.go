package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointInward enforces the layout of DESIGN.md: the core
// (appliance/...) imports no door and no user interface; doors and the UI
// import the core but never each other; only package main wires them.
func TestDependenciesPointInward(t *testing.T) {
	const mod = "github.com/clinicgate/clinicgate"
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	outer := []string{mod + "/radius", mod + "/ldapproxy", mod + "/tui"}
	under := func(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		checked++
		for _, imp := range imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			if imp == mod {
				t.Errorf("%s imports package main", pkg)
			}
			if under(pkg, mod+"/appliance") {
				for _, o := range outer {
					if under(imp, o) {
						t.Errorf("the core %s imports the adapter %s: dependencies must point inward", pkg, imp)
					}
				}
			}
			for _, a := range outer {
				for _, b := range outer {
					if a != b && under(pkg, a) && under(imp, b) {
						t.Errorf("adapter %s imports adapter %s: adapters never import each other", pkg, imp)
					}
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("go list returned %d packages; the check saw too little to mean anything", checked)
	}
}
