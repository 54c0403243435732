// Command clinicgate is an identity gateway for small clinics: it answers
// RADIUS and LDAP logins from Wi-Fi controllers, VPN gateways and
// EHR servers with a password check, MFA, posture checks and a
// tamper-evident audit trail.
//
// This package only parses the command line and calls the admin service
// (appliance/admin) or the daemon (internal/daemon); one file per command.
// Everything it starts lives in appliance/, the doors and internal/daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // allowed hours need time zones even on a minimal image
)

const usage = `clinicgate — identity gateway for small clinics

Usage:
  clinicgate serve [--config FILE] [--data DIR] [--demo]
  clinicgate user add NAME [--group G]... [--password-stdin] [--expires DATE] [--hours SPEC]
  clinicgate user list | disable NAME | enable NAME | passwd NAME | set NAME ... | remove NAME
  clinicgate client add NAME --address CIDR [--door radius|ldap] [--secret-stdin] [--mfa required|enrolled|off] ...
  clinicgate client list | show NAME | set NAME ... | remove NAME
      (802.1X: --eap ttls,peap,tls  --allow-mschap[=false]  --eap-identity any|match)
  clinicgate bindaccount add NAME --network CIDR... [--secret-stdin] | list | remove NAME
  clinicgate mfa enroll NAME | reset NAME
  clinicgate mfa provider set NAME --duo HOST --integration-key K --secret-stdin | --okta URL --secret-stdin [--number-matching]
  clinicgate mfa provider list | remove NAME
  clinicgate mfa push CLIENT --provider NAME [--group G=NAME]... [--mode auto|hold|challenge] [--budget S] [--fallback reject|totp]
  clinicgate device add MAC --user NAME | list [--user NAME] | remove MAC
  clinicgate mdm set intune --tenant T --client-id C --secret-stdin [--interval 15m]
  clinicgate mdm set jamf --url U --client-id C --secret-stdin --rule smart-group:ID|filevault,firewall,os>=14.4
  clinicgate mdm set google [--customer C] --admin-email A --key-file SA.json
  clinicgate mdm list | sync NAME | remove NAME
  clinicgate cert register USER SHA256-FINGERPRINT | register USER --file cert.pem
  clinicgate cert revoke FINGERPRINT-or-SERIAL [--reason TEXT] | unregister FINGERPRINT | list
  clinicgate scep challenge [--device NAME] [--user U] [--mac M] [--ttl 24h] [--uses N]
  clinicgate scep challenges | withdraw ID | ca > device-ca.pem | list
  clinicgate wifi ca > ca.pem | profile --ssid NAME [--method ttls|peap|tls] > clinic.mobileconfig
      (Apple devices without an MDM: --method tls --scep URL [--challenge C])
  clinicgate audit tail [-n N] [--follow] [--user NAME] | show N | verify [--against FILE]
  clinicgate audit export [--out FILE] | retention [6y]
  clinicgate audit hipaa --from YYYY-MM-DD --to YYYY-MM-DD [--user U] [--out DIR]   # CSV, JSON lines, chain proof, access report
  clinicgate audit forward set --address HOST:6514 --ca CA.pem [--cert C.pem --key K.pem] | show | off
  clinicgate settings list | set KEY VALUE
  clinicgate backup create [--out FILE] | list | restore FILE [--force]
  clinicgate backup replicate set --sftp user@host:port/path --key FILE|--password-stdin | show | off
  clinicgate backup restore --from-replica --sftp user@host:port/path --key FILE --key-backup FILE [--force]
  clinicgate acct list [--active]
  clinicgate coa events [-n N]        # sessions ended or quarantined at their NAS, and the answers
  clinicgate system apply [--dry-run] # root helper: carry out the console's network, time and power changes
  clinicgate upstream add NAME --kind radius|ldap|oidc ... | list | test NAME --user U | remove NAME
  clinicgate upstream sync NAME | sync-token NAME
  clinicgate tui                      # the console: live decisions, audit, users, clients
  clinicgate admin add-key NAME < key.pub | list-keys | remove-key NAME | hostkey
  clinicgate version

Every command takes --data DIR (or CLINICGATE_DATA, or data_dir from
--config FILE) so it acts on the same store as the running daemon.
Run 'clinicgate COMMAND -h' for a command's options.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "clinicgate:", err)
			fmt.Fprint(os.Stderr, "\n"+usage)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "clinicgate:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	c := &cli{stdin: stdin, out: stdout, errw: stderr}
	switch args[0] {
	case "serve":
		return c.serve(ctx, args[1:])
	case "user":
		return c.user(ctx, args[1:])
	case "client":
		return c.client(ctx, args[1:])
	case "bindaccount":
		return c.bindAccount(ctx, args[1:])
	case "mfa":
		return c.mfa(ctx, args[1:])
	case "wifi":
		return c.wifi(ctx, args[1:])
	case "device":
		return c.device(ctx, args[1:])
	case "cert":
		return c.cert(ctx, args[1:])
	case "mdm":
		return c.mdm(ctx, args[1:])
	case "scep":
		return c.scep(ctx, args[1:])
	case "audit":
		return c.audit(ctx, args[1:])
	case "settings":
		return c.settings(ctx, args[1:])
	case "backup":
		return c.backup(ctx, args[1:])
	case "acct":
		return c.acct(ctx, args[1:])
	case "coa":
		return c.coa(ctx, args[1:])
	case "system":
		return c.system(ctx, args[1:])
	case "upstream":
		return c.upstream(ctx, args[1:])
	case "tui":
		return c.tui(ctx, args[1:])
	case "admin":
		return c.adminCmd(ctx, args[1:])
	case "version", "--version":
		return c.version()
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
