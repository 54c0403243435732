package main

import (
	"fmt"
	"runtime/debug"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

// versionString is the stamped version, or else the module version that
// `go install …/cmd/clinicgate@vX.Y.Z` records in the binary.
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func (c *cli) version() error {
	_, err := fmt.Fprintln(c.out, "clinicgate", versionString())
	return err
}
