package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) user(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "user", "user: add, list, disable, enable, passwd, set or remove?", args, subcommands{
		"add":     c.userAdd,
		"list":    c.userList,
		"disable": c.userSwitch("disable", "disabled"),
		"enable":  c.userSwitch("enable", "enabled"),
		"remove":  c.userSwitch("remove", "removed"),
		"passwd":  c.userPasswd,
		"set":     c.userSet,
	})
}

func (c *cli) userAdd(fs *flag.FlagSet) action {
	var groups multi
	fs.Var(&groups, "group", "group membership (repeat for several)")
	display := fs.String("display-name", "", "full name")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	expires := fs.String("expires", "", "last day the account works, e.g. 2026-12-31: through the end of that day in the site's time zone (business-partner accounts)")
	hours := fs.String("hours", "", `allowed login hours, e.g. "Mon-Fri 07:00-19:00"`)
	var n admin.NewUser
	return action{args: 1, what: "one user name",
		check: func(pos []string) error {
			// The service reads the expiry in the site's time zone.
			n = admin.NewUser{Name: pos[0], DisplayName: *display, Groups: groups, Expires: *expires, Hours: *hours}
			var err error
			if *pwStdin {
				n.Password, err = c.readSecret("password")
			}
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, _ []string) error {
			if err := svc.AddUser(ctx, n); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "user %s added", n.Name)
			if n.Password == nil {
				fmt.Fprintf(c.out, " without a password (set one with 'clinicgate user passwd %s')", n.Name)
			}
			fmt.Fprintln(c.out)
			return nil
		}}
}

func (c *cli) userList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		loc, err := svc.SiteZone(ctx)
		if err != nil {
			return err
		}
		tw := c.table("NAME\tGROUPS\tSTATE\tMFA\tEXPIRES\tHOURS")
		for _, u := range users {
			state := "active"
			switch {
			case u.Disabled:
				state = "disabled"
			case u.LockedUntil.After(time.Now()):
				state = "locked until " + u.LockedUntil.In(loc).Format("2006-01-02 15:04 ") + admin.ZoneName(loc, u.LockedUntil)
			case u.PasswordHash == "":
				state = "no password"
			}
			mfaState := "-"
			if ok, _ := svc.HasTOTP(ctx, u.ID); ok {
				mfaState = "totp"
			}
			exp := "-"
			if !u.ExpiresAt.IsZero() {
				exp = admin.FormatExpiry(u.ExpiresAt, loc)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, strings.Join(u.Groups, ","), state, mfaState, exp, dash(u.Hours))
		}
		return tw.Flush()
	}}
}

// userSwitch is disable, enable or remove: one name, one call, and done
// says what happened ("disabled").
func (c *cli) userSwitch(verb, done string) func(*flag.FlagSet) action {
	return func(*flag.FlagSet) action {
		return action{args: 1, what: "one user name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			var err error
			if verb == "remove" {
				err = svc.DeleteUser(ctx, pos[0])
			} else {
				dis := verb == "disable"
				err = svc.EditUser(ctx, pos[0], admin.UserEdit{Disabled: &dis})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "user %s: %s\n", pos[0], done)
			return nil
		}}
	}
}

func (c *cli) userPasswd(fs *flag.FlagSet) action {
	fs.Bool("password-stdin", false, "read the password from standard input (the default when it is not a terminal)")
	var pw []byte
	return action{args: 1, what: "one user name",
		check: func(pos []string) (err error) {
			pw, err = c.readSecret("new password for " + pos[0])
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			if err := svc.EditUser(ctx, pos[0], admin.UserEdit{Password: pw}); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "user %s: password changed\n", pos[0])
			return nil
		}}
}

func (c *cli) userSet(fs *flag.FlagSet) action {
	var groups multi
	fs.Var(&groups, "group", "replace group memberships (repeat for several)")
	noGroups := fs.Bool("no-groups", false, "remove all group memberships")
	display := fs.String("display-name", "", "full name")
	expires := fs.String("expires", "", "last day the account works, through the end of that day in the site's time zone (or 'never')")
	hours := fs.String("hours", "", `allowed login hours (or "always")`)
	unlock := fs.Bool("unlock", false, "clear a lockout after failed attempts")
	var e admin.UserEdit
	return action{args: 1, what: "one user name",
		check: func([]string) error {
			set := given(fs)
			if set["group"] {
				g := []string(groups)
				e.Groups = &g
			}
			if *noGroups {
				g := []string{}
				e.Groups = &g
			}
			if set["display-name"] {
				e.DisplayName = display
			}
			if set["expires"] {
				e.Expires = expires // read in the site's time zone by the service
			}
			if set["hours"] {
				h := *hours
				if h == "always" {
					h = ""
				}
				e.Hours = &h
			}
			e.Unlock = *unlock
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			if err := svc.EditUser(ctx, pos[0], e); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "user %s changed\n", pos[0])
			return nil
		}}
}
