package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

func (c *cli) upstream(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "upstream", "upstream: add, list, test, sync, sync-token or remove?", args, subcommands{
		"add":        c.upstreamAdd,
		"list":       c.upstreamList,
		"remove":     c.upstreamRemove,
		"sync-token": c.upstreamSyncToken,
		"sync":       c.upstreamSync,
		"test":       c.upstreamTest,
	})
}

// upstreamAdd turns flags into an admin.UpstreamForm; the admin service
// assembles the settings and their defaults, as it does for the console.
func (c *cli) upstreamAdd(fs *flag.FlagSet) action {
	var f admin.UpstreamForm
	fs.StringVar(&f.Kind, "kind", "", "radius, ldap, ad (LDAP with Active Directory's defaults) or oidc")
	fs.Var((*multi)(&f.Servers), "server", "radius: host:port of a server (repeat for failover)")
	reqMA := fs.Bool("require-message-authenticator", true, "radius: drop replies without Message-Authenticator")
	fs.Var((*multi)(&f.PassAttributes), "pass-attribute", "radius: pass this reply attribute on to the NAS, e.g. Filter-Id (repeat)")
	fs.StringVar(&f.GroupAttribute, "group-attribute", "", "radius: Class or Filter-Id; ldap: the user attribute listing groups (default memberOf)")
	fs.IntVar(&f.TimeoutMS, "timeout-ms", 0, "one attempt's timeout in milliseconds")
	fs.IntVar(&f.BudgetMS, "budget-ms", 0, "radius: the whole check's time, all servers and retries (default 2500; keep it under the NAS's retransmit)")
	fs.Var((*multi)(&f.URLs), "url", "ldap: ldaps://host:636 or ldap://host:389 (repeat for failover)")
	startTLS := fs.Bool("starttls", false, "ldap: upgrade ldap:// with StartTLS (default: on for ldap:// URLs; --starttls=false sends passwords in clear)")
	fs.StringVar(&f.CAFile, "ca-file", "", "ldap, oidc: PEM file of the CA that signed the server's certificate")
	fs.StringVar(&f.ClientCertFile, "client-cert", "", "ldap: client certificate (Google Secure LDAP)")
	fs.StringVar(&f.ClientKeyFile, "client-key", "", "ldap: client key (Google Secure LDAP)")
	fs.StringVar(&f.BindDN, "bind-dn", "", "ldap: service account DN (its password on stdin with --secret-stdin)")
	fs.StringVar(&f.BaseDN, "base-dn", "", "ldap: where users are searched")
	fs.StringVar(&f.UserAttribute, "user-attribute", "", "ldap: uid, sAMAccountName, userPrincipalName or mail (default uid; sAMAccountName for --kind ad)")
	fs.StringVar(&f.UserFilter, "user-filter", "", "ldap: extra filter, e.g. (objectClass=person)")
	fs.StringVar(&f.GroupBaseDN, "group-base-dn", "", "ldap: search groups here by member instead of reading memberOf")
	fs.StringVar(&f.Issuer, "issuer", "", "oidc: the provider's issuer URL")
	fs.StringVar(&f.ClientID, "client-id", "", "oidc: the app registration's client id (its secret on stdin with --secret-stdin)")
	fs.Var((*multi)(&f.Scopes), "scope", "oidc: a scope to request (repeat; default openid profile email)")
	fs.StringVar(&f.UsernameClaim, "username-claim", "", "oidc: ID token claim with the login name (default preferred_username)")
	fs.StringVar(&f.GroupsClaim, "groups-claim", "", "oidc: ID token claim with the groups (default groups)")
	fs.StringVar(&f.UsernameSuffix, "username-suffix", "", "oidc: appended to names typed without @, e.g. @clinic.onmicrosoft.com")
	var sc dirsync.Config
	fs.StringVar(&sc.Kind, "sync", "", "oidc: also pull users and groups: graph (Entra ID) or okta")
	fs.StringVar(&sc.TenantID, "tenant-id", "", "sync graph: the Entra tenant (directory) id")
	fs.StringVar(&sc.OrgURL, "org-url", "", "sync okta: https://YOUR-ORG.okta.com (the API token: clinicgate upstream sync-token NAME)")
	fs.IntVar(&sc.IntervalMinutes, "sync-interval", 15, "minutes between directory syncs")
	fs.StringVar(&sc.GraphURL, "graph-url", "", "sync graph: Graph's URL (default https://graph.microsoft.com)")
	fs.StringVar(&sc.LoginURL, "login-url", "", "sync graph: sign-in URL (default https://login.microsoftonline.com)")
	secretStdin := fs.Bool("secret-stdin", false, "read the shared secret (radius), bind password (ldap) or client secret (oidc) from standard input")
	var n admin.NewUpstream
	return action{args: 1, what: "one upstream name",
		check: func(pos []string) error {
			set := given(fs)
			f.Name = pos[0]
			if set["require-message-authenticator"] {
				f.RequireMessageAuthenticator = reqMA
			}
			if set["starttls"] {
				f.StartTLS = startTLS
			}
			if sc.Kind != "" {
				f.Sync = &sc
			}
			var err error
			if n, err = f.NewUpstream(); err != nil {
				return err
			}
			if *secretStdin {
				n.Secret, err = c.readSecret("secret")
			}
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			warnings, err := svc.AddUpstream(ctx, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "upstream %s added; check it with: clinicgate upstream test %s --user SOMEONE\n", pos[0], pos[0])
			for _, w := range warnings {
				fmt.Fprintln(c.out, "warning:", w)
			}
			return nil
		}}
}

func (c *cli) upstreamList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ups, err := svc.Upstreams(ctx)
		if err != nil {
			return err
		}
		tw := c.table("NAME\tKIND\tSETTINGS\tLAST SYNC\tWARNINGS")
		for _, u := range ups {
			warn := "-"
			if ws, err := admin.UpstreamWarnings(u); err != nil {
				warn = "MISCONFIGURED: " + err.Error()
			} else if len(ws) > 0 {
				warn = strings.Join(ws, "; ")
			}
			syncState := "-"
			if rec, err := svc.SyncState(ctx, u.Name); err == nil && !rec.LastRun.IsZero() {
				syncState = rec.LastRun.Local().Format("01-02 15:04") + fmt.Sprintf(" (%d users, %d groups)", rec.Users, rec.Groups)
				if rec.LastError != "" {
					syncState = rec.LastRun.Local().Format("01-02 15:04") + " FAILED: " + rec.LastError
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Kind, u.Config, syncState, warn)
		}
		return tw.Flush()
	}}
}

func (c *cli) upstreamRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one upstream name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveUpstream(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "upstream %s removed\n", pos[0])
		return nil
	}}
}

func (c *cli) upstreamSyncToken(*flag.FlagSet) action {
	var tok secrets.Secret
	return action{args: 1, what: "one upstream name",
		check: func([]string) (err error) {
			tok, err = c.readSecret("API token")
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			if err := svc.SetSyncToken(ctx, pos[0], tok); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "sync token for %s stored\n", pos[0])
			return nil
		}}
}

func (c *cli) upstreamSync(*flag.FlagSet) action {
	return action{args: 1, what: "one upstream name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		stats, err := svc.SyncUpstream(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "synced %s: %d users, %d groups; %d created, %d updated, %d disabled\n", pos[0], stats.Users, stats.Groups, stats.Created, stats.Updated, stats.Disabled)
		for _, cf := range stats.Conflicts {
			fmt.Fprintln(c.out, "skipped:", cf)
		}
		return nil
	}}
}

// upstreamTest performs a real login check and explains each step.
func (c *cli) upstreamTest(fs *flag.FlagSet) action {
	userName := fs.String("user", "", "the account to try")
	fs.Bool("password-stdin", false, "read the password from standard input (the default when it is not a terminal)")
	var pw secrets.Secret
	return action{args: 1, what: "one upstream name",
		check: func([]string) (err error) {
			if *userName == "" {
				return usageError{"upstream test: --user is required"}
			}
			pw, err = c.readSecret("password for " + *userName)
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			check, err := svc.TestUpstream(ctx, pos[0], *userName, pw)
			for _, l := range check.Lines() {
				fmt.Fprintln(c.out, l)
			}
			return err
		}}
}
