package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// mfaProvider is `clinicgate mfa provider set|list|remove`: the Duo and
// Okta Verify accounts push MFA goes through (docs/upstreams/duo.md,
// okta-verify.md).
func (c *cli) mfaProvider(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "mfa provider", "mfa provider: set, list or remove?", args, subcommands{
		"set":    c.mfaProviderSet,
		"list":   c.mfaProviderList,
		"remove": c.mfaProviderRemove,
	})
}

func (c *cli) mfaProviderSet(fs *flag.FlagSet) action {
	duoHost := fs.String("duo", "", "Duo: the Auth API application's API hostname (api-XXXXXXXX.duosecurity.com)")
	ikey := fs.String("integration-key", "", "Duo: the Auth API application's integration key")
	okta := fs.String("okta", "", "Okta: the org URL (https://YOUR-ORG.okta.com)")
	number := fs.Bool("number-matching", false, "Okta: ask for a number challenge with each push (the number is shown at login)")
	caFile := fs.String("ca-file", "", "PEM roots to trust for the provider instead of the usual ones (a TLS-inspecting proxy, a test stand-in); leave empty in production")
	secretStdin := fs.Bool("secret-stdin", false, "read Duo's secret key or Okta's API token from standard input (needed the first time)")
	return action{args: 1, what: "one provider name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		cfg := admin.MFAProviderConfig{Name: pos[0]}
		switch {
		case *duoHost != "" && *okta == "":
			cfg.Duo = &mfa.DuoSettings{APIHost: *duoHost, IntegrationKey: *ikey, CAFile: *caFile}
		case *okta != "" && *duoHost == "":
			cfg.Okta = &mfa.OktaSettings{OrgURL: *okta, NumberMatching: *number, CAFile: *caFile}
		default:
			return usageError{"give --duo HOST --integration-key KEY, or --okta URL"}
		}
		if *secretStdin {
			s, err := c.readSecret("secret key or API token")
			if err != nil {
				return err
			}
			cfg.Secret = s
		}
		if err := svc.SetMFAProvider(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "MFA provider %s set. Give it to a client with 'clinicgate mfa push CLIENT --provider %s'.\n", pos[0], pos[0])
		return nil
	}}
}

func (c *cli) mfaProviderList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ps, err := svc.MFAProviders(ctx)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			fmt.Fprintln(c.out, "No MFA providers: TOTP only. Add one with 'clinicgate mfa provider set NAME --duo …' or '--okta …'.")
			return nil
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tACCOUNT\tCLIENTS")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Kind, p.Summary, strings.Join(p.Clients, ","))
		}
		return tw.Flush()
	}}
}

func (c *cli) mfaProviderRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one provider name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveMFAProvider(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "MFA provider %s removed\n", pos[0])
		return nil
	}}
}

// groupProviders is a repeatable GROUP=PROVIDER flag.
type groupProviders []policy.GroupProvider

func (g *groupProviders) String() string { return fmt.Sprint(*g) }
func (g *groupProviders) Set(v string) error {
	group, prov, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want GROUP=PROVIDER, not %q", v)
	}
	*g = append(*g, policy.GroupProvider{Group: strings.TrimSpace(group), Provider: strings.TrimSpace(prov)})
	return nil
}

// mfaPush is `clinicgate mfa push CLIENT`: the client's push provider and
// how it waits for the phone.
func (c *cli) mfaPush(fs *flag.FlagSet) action {
	provider := fs.String("provider", "", `the provider's name, or "totp" for the built-in codes only`)
	var groups groupProviders
	fs.Var(&groups, "group", "GROUP=PROVIDER: members of GROUP use this provider (repeat; first match wins)")
	mode := fs.String("mode", string(policy.PushAuto), "how a login waits: auto, hold (answer when the push completes) or challenge (answer at once: approve, then press OK)")
	budget := fs.Int("budget", 0, "at most this many seconds a request is held (0: 25); the NAS's own retransmit timer, learned, may shorten it")
	fallback := fs.String("fallback", string(policy.PushFallbackReject), "when the provider cannot be reached: reject, or totp (ask the user's TOTP code)")
	return action{args: 1, what: "one client name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		p := policy.Push{Provider: *provider, Groups: groups, Mode: policy.PushMode(*mode), Budget: *budget, Fallback: policy.PushFallback(*fallback)}
		if p.Provider == policy.TOTP && len(p.Groups) == 0 {
			p = policy.Push{}
		}
		if err := svc.SetClientPush(ctx, pos[0], p); err != nil {
			return err
		}
		if p.Provider == "" {
			fmt.Fprintf(c.out, "%s: TOTP only, no push\n", pos[0])
			return nil
		}
		fmt.Fprintf(c.out, "%s: push through %s, mode %s, held at most %ds, fallback %s\n", pos[0], p.Provider, p.EffectiveMode(), p.BudgetSeconds(), *fallback)
		return nil
	}}
}
