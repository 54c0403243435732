package main

// The demo set-up that `make run` (serve --demo) makes and prints: a
// newcomer logs in within a minute, with the tools the banner names.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/internal/daemon"
)

type demoSetup struct {
	client, secret, user, password string
	fresh                          bool
}

// setupDemo adds, on an empty store, a loopback client and a user, so that a
// newcomer can log in within a minute. On a store that already has the demo
// client it gives alice a fresh password (the old one was shown once and is
// stored only as a hash).
func setupDemo(ctx context.Context, dm *daemon.Daemon) (*demoSetup, error) {
	d := &demoSetup{client: "local-test", user: "alice", fresh: true}
	svc, err := dm.Admin("demo")
	if err != nil {
		return nil, err
	}
	pw, err := admin.GenerateSecret(nil)
	if err != nil {
		return nil, err
	}
	d.password = pw[:12]
	cs, err := svc.Clients(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Name == d.client {
			d.secret = string(c.Secret)
			if err := svc.EditUser(ctx, d.user, admin.UserEdit{Password: []byte(d.password), Unlock: true}); err != nil {
				d.fresh = false // alice was removed; the instructions still show the client
			}
			return d, nil
		}
	}
	if len(cs) > 0 {
		return nil, errors.New("--demo only sets up an empty store; this one has clients already")
	}
	pol := policy.Default()
	pol.MFA = policy.MFAEnrolled // alice can log in before she enrols a factor
	secret, err := svc.AddClient(ctx, admin.NewClient{Name: d.client, Address: "127.0.0.1", Policy: pol})
	if err != nil {
		return nil, err
	}
	// The LDAP door's demo client: an "EHR" on this machine.
	if _, err := svc.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: "local-ehr", Address: "127.0.0.1", Policy: pol}); err != nil {
		return nil, err
	}
	if err := svc.AddUser(ctx, admin.NewUser{Name: d.user, DisplayName: "Alice (demo)", Groups: []string{"staff"}, Password: []byte(d.password)}); err != nil {
		return nil, err
	}
	d.secret = string(secret)
	return d, nil
}

func (d *demoSetup) print(w interface{ Write([]byte) (int, error) }, cfg config.Config, dir string) {
	host := "127.0.0.1"
	if _, port, err := net.SplitHostPort(cfg.RADIUS.Auth); err == nil && port != "1812" {
		host += ":" + port
	}
	pw := d.password
	if !d.fresh {
		pw = "<alice's password>"
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("\nDemo set-up: RADIUS client %q (127.0.0.1, shared secret %s) and user %q", d.client, d.secret, d.user)
	if d.fresh {
		p(" with password %s (new at every start)", d.password)
	} else {
		p(" (no longer exists; add a user with: bin/clinicgate user add NAME --password-stdin)")
	}
	p(".\n")
	if _, err := exec.LookPath("radtest"); err != nil {
		p("\nFirst install the RADIUS test tools:  sudo apt-get install freeradius-utils oathtool\n")
	}
	p("\nIn another terminal, in this folder:\n")
	p("  export CLINICGATE_DATA=%s\n", dir)
	p("1. Log in with a password:\n")
	p("     radtest %s '%s' %s 0 '%s'            → Access-Accept\n", d.user, pw, host, d.secret)
	p("2. Enrol a second factor (scan the QR code with an authenticator app, or use oathtool;\n   SECRET below is the Secret: line that mfa enroll prints):\n")
	p("     bin/clinicgate mfa enroll %s\n", d.user)
	p("     radtest %s '%s' %s 0 '%s'            → Access-Challenge, note its State = 0x...\n", d.user, pw, host, d.secret)
	p("     echo \"User-Name=%s,User-Password=$(oathtool --totp -b SECRET),State=0x...,Message-Authenticator=0x00\" | radclient -x %s auth '%s'\n", d.user, host, d.secret)
	p("                                                              → Access-Accept\n")
	p("   or in one request, code appended to the password (wait 30 s: a code works once):\n")
	p("     radtest %s \"%s,$(oathtool --totp -b SECRET)\" %s 0 '%s'\n", d.user, pw, host, d.secret)
	if cfg.LDAP.Listen != "" {
		p("3. Log in over LDAP, as an EHR would (needs ldap-utils; after step 2 append the code: \"%s,$(oathtool --totp -b SECRET)\"):\n", pw)
		p("     LDAPTLS_CACERT=%s ldapwhoami -x -ZZ -H ldap://%s -D %s -w '%s'   → u:%s\n", filepath.Join(dir, pki.ServerCAFile), cfg.LDAP.Listen, d.user, pw, d.user)
	}
	p("4. See every decision:  bin/clinicgate audit tail   and   bin/clinicgate audit verify\n")
	if _, port, err := net.SplitHostPort(cfg.SSH); err == nil {
		p("5. Or watch it live in the console:  bin/clinicgate tui   (over SSH: bin/clinicgate admin add-key me < ~/.ssh/id_ed25519.pub, then ssh -t -p %s 127.0.0.1)\n", port)
	} else {
		p("5. Or watch it live in the console:  bin/clinicgate tui\n")
	}
	p("Stop with Ctrl-C. Start afresh with: make clean run\n")
}
