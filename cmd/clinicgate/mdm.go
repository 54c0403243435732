package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/posture"
)

func (c *cli) mdm(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "mdm", "mdm: set, list, sync or remove?", args, subcommands{
		"set":    c.mdmSet,
		"list":   c.mdmList,
		"sync":   c.mdmSync,
		"remove": c.mdmRemove,
	})
}

// mdmSet turns flags into an admin.MDMConfig; the admin service checks
// the settings by building the connector.
func (c *cli) mdmSet(fs *flag.FlagSet) action {
	tenant := fs.String("tenant", "", "intune: the Entra tenant id (or its .onmicrosoft.com domain)")
	clientID := fs.String("client-id", "", "intune: the app registration's client id; jamf: the API client's id")
	secretStdin := fs.Bool("secret-stdin", false, "intune, jamf: read the client secret from standard input")
	jamfURL := fs.String("url", "", "jamf: the Jamf Pro server, e.g. https://clinic.jamfcloud.com")
	rule := fs.String("rule", "", "jamf: compliance rule: smart-group:ID, or checks such as filevault,firewall,os>=14.4")
	customer := fs.String("customer", "my_customer", "google: the Workspace customer id (C0...) or my_customer")
	adminEmail := fs.String("admin-email", "", "google: the administrator the service account acts as")
	keyFile := fs.String("key-file", "", "google: the service account's JSON key file")
	interval := fs.Duration("interval", 0, "time between syncs, e.g. 15m (default 15m, or the stored one)")
	disabled := fs.Bool("disabled", false, "keep the settings but stop the periodic sync")
	loginURL := fs.String("login-url", "", "intune: sign-in URL (default https://login.microsoftonline.com)")
	graphURL := fs.String("graph-url", "", "intune: Graph URL (default https://graph.microsoft.com)")
	apiURL := fs.String("api-url", "", "google: Cloud Identity URL (default https://cloudidentity.googleapis.com)")
	var mc admin.MDMConfig
	return action{args: 1, what: "which MDM: " + admin.MDMNames(),
		check: func(pos []string) error {
			mc = admin.MDMConfig{Name: pos[0], Interval: *interval, Disabled: *disabled}
			switch pos[0] {
			case "intune":
				if *tenant == "" || *clientID == "" {
					return usageError{"mdm set intune: --tenant and --client-id are required"}
				}
				mc.Intune = &posture.IntuneSettings{TenantID: *tenant, ClientID: *clientID, LoginURL: *loginURL, GraphURL: *graphURL}
			case "jamf":
				if *jamfURL == "" || *clientID == "" || *rule == "" {
					return usageError{"mdm set jamf: --url, --client-id and --rule are required"}
				}
				if _, err := posture.ParseJamfRule(*rule); err != nil {
					return usageError{err.Error()}
				}
				mc.Jamf = &posture.JamfSettings{URL: *jamfURL, ClientID: *clientID, Rule: *rule}
			case "google":
				if *adminEmail == "" {
					return usageError{"mdm set google: --admin-email is required"}
				}
				mc.Google = &posture.GoogleSettings{Customer: *customer, AdminEmail: *adminEmail, APIURL: *apiURL}
				if *keyFile != "" {
					b, err := os.ReadFile(*keyFile)
					if err != nil {
						return err
					}
					mc.Secret = b
				}
				return nil
			default:
				return usageError{fmt.Sprintf("mdm set: %q is not one of %s", pos[0], admin.MDMNames())}
			}
			if *secretStdin {
				var err error
				mc.Secret, err = c.readSecret("client secret")
				return err
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			if err := svc.SetMDM(ctx, mc); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "MDM %s set; the running daemon syncs it within a few seconds (see 'clinicgate mdm list', or 'clinicgate mdm sync %s' to wait for it)\n", pos[0], pos[0])
			return nil
		}}
}

func (c *cli) mdmList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ms, err := svc.MDMSources(ctx)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			fmt.Fprintln(c.out, "no MDM configured (clinicgate mdm set intune|jamf|google ...)")
			return nil
		}
		tw := c.table("MDM\tSETTINGS\tRULE\tEVERY\tLAST SUCCESS\tDEVICES\tSTALE\tLAST ERROR")
		for _, m := range ms {
			every := m.Interval.String()
			if !m.Enabled {
				every = "off"
			}
			rule := m.Rule
			if rule == "" {
				rule = "-"
			}
			last := "never"
			if !m.LastSuccess.IsZero() {
				last = m.LastSuccess.Local().Format("2006-01-02 15:04")
			}
			stale := "no"
			if m.Stale {
				stale = "YES"
			}
			errText := "-"
			if m.LastError != "" {
				errText = m.LastAttempt.Local().Format("01-02 15:04") + " " + m.LastError
			}
			if m.Problem != "" {
				errText = "MISCONFIGURED: " + m.Problem
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, m.Summary, rule, every, last, m.Devices, stale, errText)
		}
		return tw.Flush()
	}}
}

func (c *cli) mdmSync(fs *flag.FlagSet) action {
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the daemon's sync to finish")
	return action{args: 1, what: "one MDM name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		out, err := svc.SyncMDM(ctx, pos[0], *wait)
		switch {
		case err != nil:
			return err
		case !out.Done:
			return fmt.Errorf("sync of %s requested, but it did not finish within %s; is 'clinicgate serve' running? ('clinicgate mdm list' shows the outcome later)", pos[0], *wait)
		case out.Err != "":
			return fmt.Errorf("sync of %s failed; the last good data is kept: %s", pos[0], out.Err)
		}
		fmt.Fprintf(c.out, "synced %s: %d devices\n", pos[0], out.Devices)
		return nil
	}}
}

func (c *cli) mdmRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one MDM name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		n, err := svc.RemoveMDM(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "MDM %s removed with its %d device records\n", pos[0], n)
		return nil
	}}
}
