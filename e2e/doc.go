// Package e2e holds the end-to-end tests and the benchmarks of `make
// bench`: they build the clinicgate binary, run it on 127.0.0.1 and drive
// it with real peers (radclient, oathtool, OpenLDAP's tools, slapd,
// FreeRADIUS, tmux). It has no code of its own outside its tests, and
// nothing imports it.
package e2e
