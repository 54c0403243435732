package tui

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The test login sends a real RADIUS Access-Request through the running
// appliance, from this machine, under the policy of the chosen client, and
// shows the answer and the decision's story. The appliance resolves clients
// by source address, so the request goes out as a loopback client: an
// existing one if the operator has one (its own policy then applies, and
// the screen says so), else a temporary "console-test" client carrying a
// copy of the chosen client's policy, removed afterwards. Both changes are
// audited like any other.

const testClientName = "console-test"

var loopback = netip.MustParseAddr("127.0.0.1")

var radiusAddrRE = regexp.MustCompile(`RADIUS authentication (\S+)/udp`)

// daemonUp says why the daemon cannot take a test login (nil: it can).
func (m Model) daemonUp() error {
	if m.daemon == nil {
		return errors.New("the daemon has not reported where it listens; is it running?")
	}
	if m.opts.Now().Sub(m.daemon.UpdatedAt) > 20*time.Second {
		return errors.New("the daemon is not answering; start it first")
	}
	return nil
}

// radiusAddr finds the daemon's authentication address in its status.
func (m Model) radiusAddr() (string, error) {
	if err := m.daemonUp(); err != nil {
		return "", err
	}
	for _, l := range m.daemon.Listeners {
		if mm := radiusAddrRE.FindStringSubmatch(l); mm != nil {
			ap, err := netip.ParseAddrPort(mm[1])
			if err != nil {
				return "", err
			}
			// A wildcard listener answers on loopback too.
			return netip.AddrPortFrom(loopback, ap.Port()).String(), nil
		}
	}
	return "", errors.New("the daemon does not listen for RADIUS authentication")
}

func (m Model) testLoginForm(c store.Client) *form {
	return newForm("Test login through "+c.Name+"'s policy", func(v []string) tea.Cmd {
		addr, aerr := m.radiusAddr()
		return m.act(func(ctx context.Context) doneMsg {
			if aerr != nil {
				return doneMsg{err: fmt.Errorf("%w: %v", admin.ErrInvalid, aerr)}
			}
			report, err := m.testLogin(ctx, addr, c, strings.TrimSpace(v[0]), v[1])
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "test login sent", show: report}
		})
	},
		field("user", "who to log in as", false, 128),
		field("password", "the password (append ,123456 for a code where the policy allows)", true, 128),
	)
}

func (m Model) testLogin(ctx context.Context, addr string, chosen store.Client, user, password string) (string, error) {
	clients, err := m.admin.Clients(ctx)
	if err != nil {
		return "", err
	}
	// Only a RADIUS client can send it: an LDAP client at 127.0.0.1 has
	// no shared secret.
	via := loopbackVia(clients, appliance.DoorRADIUS, testClientName, loopback)
	var note string
	secret := []byte(nil)
	if via != nil {
		secret = via.Secret
		note = viaNote(via.Name, chosen.Name)
	} else {
		s, err := admin.GenerateSecret(nil)
		if err != nil {
			return "", err
		}
		secret = []byte(s)
		_ = m.admin.RemoveClient(ctx, testClientName) // a leftover from an interrupted test
		if _, err := m.admin.AddClient(ctx, admin.NewClient{Name: testClientName, Address: "127.0.0.1", Secret: secret, Policy: chosen.Policy}); err != nil {
			return "", err
		}
		defer m.admin.RemoveClient(context.Background(), testClientName)
		note = fmt.Sprintf("Sent as the temporary client %s with %s's policy.", testClientName, chosen.Name)
		// The daemon picks up new clients within a second.
		select {
		case <-time.After(1200 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	p := radius.New(radius.CodeAccessRequest, secret)
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		return "", fmt.Errorf("%w: the user name is too long", admin.ErrInvalid)
	}
	if err := rfc2865.UserPassword_SetString(p, password); err != nil {
		return "", fmt.Errorf("%w: the password is too long for RADIUS (128 bytes)", admin.ErrInvalid)
	}
	_ = rfc2865.NASIdentifier_SetString(p, "clinicgate-console")
	p.Add(rfc2869.MessageAuthenticator_Type, make([]byte, md5.Size))
	raw, err := p.Encode()
	if err != nil {
		return "", err
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(raw)
	copy(raw[len(raw)-md5.Size:], mac.Sum(nil))
	p.Attributes.Set(rfc2869.MessageAuthenticator_Type, raw[len(raw)-md5.Size:])
	sent := time.Now()
	xctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := radius.Exchange(xctx, p, addr)
	if err != nil {
		return "", fmt.Errorf("%w: no answer from %s (%v)", admin.ErrInvalid, addr, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Test login of %s: %s in %s\n%s\n\n", sanitize(user), resp.Code, time.Since(sent).Round(time.Millisecond), note)
	if msg := rfc2865.ReplyMessage_GetString(resp); msg != "" {
		fmt.Fprintf(&b, "  Reply-Message:  %s\n", sanitize(msg))
	}
	if _, vlan, err := rfc2868.TunnelPrivateGroupID_LookupString(resp); err == nil {
		fmt.Fprintf(&b, "  VLAN:           %s\n", sanitize(vlan))
	}
	if st, err := rfc2865.SessionTimeout_Lookup(resp); err == nil {
		fmt.Fprintf(&b, "  Session-Timeout: %d s\n", st)
	}
	if resp.Code == radius.CodeAccessChallenge {
		b.WriteString("  (a code was asked for; a NAS would now prompt the user)\n")
	}
	b.WriteString(m.story(ctx, func(r store.AuditRow) bool { return strings.EqualFold(r.User, user) }))
	return b.String(), nil
}

// loopbackVia picks the existing client of door a test login from src
// goes out as (nil: none, a temporary one is added). skip is the
// temporary client's name: a leftover of an interrupted test never counts.
func loopbackVia(clients []store.Client, door appliance.Door, skip string, src netip.Addr) *store.Client {
	var via *store.Client
	for i := range clients {
		c := &clients[i]
		d := appliance.Door(c.Door)
		if d == "" {
			d = appliance.DoorRADIUS
		}
		if d == door && c.Prefix.Contains(src) && c.Name != skip {
			via = c
		}
	}
	return via
}

func viaNote(via, chosen string) string {
	if via == chosen {
		return fmt.Sprintf("Sent from this machine as %s itself.", via)
	}
	return fmt.Sprintf("Sent as the loopback client %s (its policy applies, not %s's).", via, chosen)
}

// story is the newest decision since the form opened that match accepts,
// told step by step from the audit ("" if none is found).
func (m Model) story(ctx context.Context, match func(store.AuditRow) bool) string {
	rows, err := m.admin.AuditAfter(ctx, m.lastSeq, 500)
	if err != nil {
		return ""
	}
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		if r.Kind == "decision" && match(r) {
			var b strings.Builder
			steps, _ := decisionStory(r.Detail)
			fmt.Fprintf(&b, "\nWhat happened (audit entry %d, %s):\n", r.Seq, sanitize(r.Reason))
			for j, s := range steps {
				fmt.Fprintf(&b, "  %d. %s\n", j+1, sanitize(s))
			}
			return b.String()
		}
	}
	return ""
}
