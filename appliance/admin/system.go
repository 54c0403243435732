package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The appliance's own system (appliance/hostcfg): network, host name,
// NTP, reboot, power-off and factory reset, asked for here and carried
// out by the root helper unit on the images.

// SystemState is what the console shows before a change.
type SystemState struct {
	Hostname string
	// Addrs are the ports and their addresses ("eth0 192.168.1.5/24").
	Addrs []string
	// Managed says the root helper is enabled (the images): a request is
	// carried out. Otherwise the console only shows what would change.
	Managed bool
}

// SystemNow describes the host now.
func (s *Service) SystemNow(context.Context) SystemState {
	st := SystemState{Managed: systemManaged()}
	st.Hostname = hostcfg.Hostname(systemRoot)
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		var as []string
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLinkLocalUnicast() {
				as = append(as, a.String())
			}
		}
		state := "down"
		if i.Flags&net.FlagUp != 0 {
			state = "up"
		}
		if len(as) == 0 {
			as = []string{"(no address)"}
		}
		st.Addrs = append(st.Addrs, fmt.Sprintf("%s %s %s", i.Name, state, strings.Join(as, " ")))
	}
	return st
}

// systemRoot is the system's root, whose /etc/hostname names this
// appliance (a scratch directory in tests).
var systemRoot = "/"

// systemManaged reports the root helper's path unit enabled.
var systemManaged = func() bool {
	_, err := os.Lstat(hostcfg.ManagedMarker)
	return err == nil
}

// SystemChange is what RequestSystemChange did.
type SystemChange struct {
	// ID names the request queued for the helper ("" when only previewed).
	ID string
	// Preview is what would change, when the helper is not installed.
	Preview string
	Summary string
}

// RequestSystemChange checks r, audits it and queues it for the root
// helper; where the helper is not enabled it changes nothing and returns
// what would change.
func (s *Service) RequestSystemChange(ctx context.Context, r hostcfg.Request) (SystemChange, error) {
	r.ID, r.At, r.Actor = hostcfg.NewID(), s.Now(), s.Actor
	host := hostcfg.Hostname(systemRoot)
	if err := r.Check(host); err != nil {
		return SystemChange{}, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), hostcfg.ErrInvalid.Error()+": "))
	}
	hosts, _ := os.ReadFile("/" + hostcfg.HostsFile)
	plan := hostcfg.PlanFor(r, string(hosts))
	if !systemManaged() {
		return SystemChange{Preview: plan.Preview(), Summary: plan.Summary}, nil
	}
	err := s.change(ctx, audit.Entry{Reason: "system_" + strings.ReplaceAll(r.Kind, "-", "_"), Detail: plan.Summary + " (request " + r.ID + ")"}, func(*store.Tx) error {
		return hostcfg.Submit(s.Store.Dir(), r)
	})
	if err != nil {
		return SystemChange{}, err
	}
	return SystemChange{ID: r.ID, Summary: plan.Summary}, nil
}

// ErrNoHelper is a request the helper did not take up in time.
var ErrNoHelper = errors.New("the system helper (clinicgate-system.path) did not answer")

// SystemResult waits up to wait for the helper's answer to id.
func (s *Service) SystemResult(ctx context.Context, id string, wait time.Duration) (hostcfg.Result, error) {
	deadline := time.Now().Add(wait)
	for {
		r, ok, err := hostcfg.ResultOf(s.Store.Dir(), id)
		if err != nil || ok {
			return r, err
		}
		if time.Now().After(deadline) {
			return hostcfg.Result{}, ErrNoHelper
		}
		select {
		case <-ctx.Done():
			return hostcfg.Result{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// IncomingPackages lists the clinicgate packages uploaded into the data
// directory's incoming/ (over SFTP), for the update screen.
func (s *Service) IncomingPackages(context.Context) []string {
	es, _ := os.ReadDir(filepath.Join(s.Store.Dir(), "incoming"))
	var out []string
	for _, e := range es {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "clinicgate_") && strings.HasSuffix(e.Name(), ".deb") {
			out = append(out, e.Name())
		}
	}
	return out
}
