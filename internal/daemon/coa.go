package daemon

// The CoA worker: when a posture event is queued (a device turned
// noncompliant, a certificate was revoked, a user was disabled), it finds
// the sessions accounting says are open for that device or user, and asks
// each session's NAS to end it (Disconnect-Request) or move it into
// quarantine (CoA-Request), as the session's client says (docs/coa.md). Every
// NAS answer is audited and the event is closed with what happened.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/radius"
)

// The audit reasons of the CoA worker's system entries, one per NAS answer.
const (
	reasonCoAACK     = "coa_ack"
	reasonCoANAK     = "coa_nak"
	reasonCoATimeout = "coa_timeout"
	reasonCoAError   = "coa_error"
)

const (
	// coaBatch bounds the events one poll takes; coaSessions the sessions
	// one event reaches (a user on more devices than this is unusual; the
	// rest are refused at their next login anyway).
	coaBatch    = 20
	coaSessions = 50
	// coaParallel bounds the requests in flight: a few silent NASes must
	// not hold up the rest for long, nor a burst flood the network.
	coaParallel = 4
)

// coaStore is what the worker needs of the store.
type coaStore interface {
	PendingPostureEvents(ctx context.Context, limit int) ([]store.PostureEvent, error)
	ActiveAcctSessions(ctx context.Context, macs []string, user string, limit int) ([]store.AcctSession, error)
	ClientByName(ctx context.Context, name string) (store.Client, error)
	DeviceByID(ctx context.Context, id int64) (store.Device, error)
	FinishPostureEvent(ctx context.Context, id int64, result string, now time.Time) error
}

// coaAudit records the NAS's answers.
type coaAudit interface {
	Append(ctx context.Context, e audit.Entry) (int64, error)
}

// coaWorker turns posture events into RFC 5176 requests.
type coaWorker struct {
	store  coaStore
	audit  coaAudit
	client *radius.DynAuthClient
	log    *slog.Logger
	now    func() time.Time
}

func newCoAWorker(st coaStore, au coaAudit, log *slog.Logger) *coaWorker {
	return &coaWorker{store: st, audit: au, log: log, now: time.Now, client: &radius.DynAuthClient{Logger: log}}
}

// run handles the pending events of one poll. An event whose handling was
// cut short by shutdown stays pending for the next start.
func (w *coaWorker) run(ctx context.Context) {
	evs, err := w.store.PendingPostureEvents(ctx, coaBatch)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("cannot read posture events", "err", err)
		}
		return
	}
	if len(evs) == 0 {
		return
	}
	var (
		mu          sync.Mutex
		results     = make([][]string, len(evs))
		interrupted = make([]bool, len(evs))
		sent        = map[string]int64{} // client/session → event that reached it
		g           errgroup.Group
	)
	g.SetLimit(coaParallel)
	note := func(i int, s string) {
		mu.Lock()
		defer mu.Unlock()
		results[i] = append(results[i], s)
	}
	for i, ev := range evs {
		sessions, err := w.sessionsOf(ctx, ev)
		if err != nil {
			if ctx.Err() != nil {
				interrupted[i] = true
				continue
			}
			note(i, "cannot read the sessions: "+err.Error())
			continue
		}
		if len(sessions) == 0 {
			note(i, "no active session")
			continue
		}
		for _, s := range sessions {
			key := s.Client + "\x00" + s.SessionID
			if first, dup := sent[key]; dup {
				// Two events of one batch about one session: one request.
				note(i, fmt.Sprintf("session %s on %s: handled with event %d", s.SessionID, s.Client, first))
				continue
			}
			sent[key] = ev.ID
			g.Go(func() error {
				out, err := w.handle(ctx, ev, s)
				if err != nil {
					mu.Lock()
					interrupted[i] = true
					mu.Unlock()
					return nil
				}
				note(i, out)
				return nil
			})
		}
	}
	_ = g.Wait()
	for i, ev := range evs {
		if interrupted[i] {
			continue
		}
		// Sessions of one client without CoA say the same: once is enough.
		slices.Sort(results[i])
		result := strings.Join(slices.Compact(results[i]), "; ")
		if err := w.store.FinishPostureEvent(ctx, ev.ID, result, w.now()); err != nil && ctx.Err() == nil {
			w.log.Warn("cannot record a posture event's result", "event", ev.ID, "err", err)
		}
	}
}

// sessionsOf finds the open sessions an event is about: its device's, by
// MAC; or, for an event without a device (a user disabled, a certificate
// of no known device revoked), its user's.
func (w *coaWorker) sessionsOf(ctx context.Context, ev store.PostureEvent) ([]store.AcctSession, error) {
	switch {
	case len(ev.MACs) > 0:
		return w.store.ActiveAcctSessions(ctx, ev.MACs, "", coaSessions)
	case ev.UserName != "":
		return w.store.ActiveAcctSessions(ctx, nil, ev.UserName, coaSessions)
	}
	return nil, nil
}

// handle sends the session's client's request and says what came of it.
// The error is non-nil only when ctx ended first.
func (w *coaWorker) handle(ctx context.Context, ev store.PostureEvent, s store.AcctSession) (string, error) {
	where := fmt.Sprintf("session %s of %q on %s", s.SessionID, s.UserName, s.Client)
	c, err := w.store.ClientByName(ctx, s.Client)
	if errors.Is(err, store.ErrNotFound) {
		return where + ": the client no longer exists", nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return where + ": cannot read the client: " + err.Error(), nil
	}
	p := c.Policy.Posture
	if p.CoA == "" {
		return "no CoA for client " + c.Name, nil
	}
	if why := w.moot(ctx, ev, c); why != "" {
		return where + ": " + why, nil
	}
	nas, err := coaTarget(c, s, p.Port())
	if err != nil {
		w.record(ctx, ev, s, reasonCoAError, "failed", err.Error())
		return where + ": " + err.Error(), nil
	}
	req := radius.DynAuthRequest{
		Kind: radius.Disconnect, NAS: nas, Secret: c.Secret,
		UserName: s.UserName, CallingStation: s.CallingStation, AcctSessionID: s.SessionID,
		NASIdentifier: s.NASIdentifier,
	}
	if a, err := netip.ParseAddr(s.NASIPAttr); err == nil {
		req.NASIPAddress = a.Unmap()
	}
	if p.CoA == policy.CoAQuarantine {
		req.Kind, req.VLAN, req.FilterID = radius.CoA, p.QuarantineVLAN, p.QuarantineFilterID
	}
	out, res, err := w.send(ctx, ev, s, req)
	if err != nil {
		return "", err
	}
	if req.Kind == radius.CoA && res.Outcome == radius.DynAuthNAK &&
		(res.ErrorCause == radius.CauseUnsupportedAttribute || res.ErrorCause == radius.CauseUnsupportedService || res.ErrorCause == radius.CauseUnsupportedExtension) {
		// A NAS that cannot move a session to another VLAN (hostapd,
		// many switches) can still end it; the device's next login is
		// then quarantined by the gate.
		req.Kind, req.VLAN, req.FilterID = radius.Disconnect, 0, ""
		more, _, err := w.send(ctx, ev, s, req)
		if err != nil {
			return "", err
		}
		out += ", so " + more
	}
	return where + ": " + out, nil
}

// send sends one request, audits the answer and describes it.
func (w *coaWorker) send(ctx context.Context, ev store.PostureEvent, s store.AcctSession, req radius.DynAuthRequest) (string, radius.DynAuthResult, error) {
	res, err := w.client.Send(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return "", res, ctx.Err()
		}
		what := fmt.Sprintf("%s to %s failed: %v", req.Kind, req.NAS, err)
		w.record(ctx, ev, s, reasonCoAError, "failed", what)
		return what, res, nil
	}
	what := fmt.Sprintf("%s to %s: %s", req.Kind, req.NAS, res)
	reason, outcome := reasonCoATimeout, "failed"
	switch res.Outcome {
	case radius.DynAuthACK:
		reason, outcome = reasonCoAACK, map[radius.DynAuthKind]string{radius.Disconnect: "disconnected", radius.CoA: "quarantined"}[req.Kind]
	case radius.DynAuthNAK:
		reason = reasonCoANAK
	}
	w.record(ctx, ev, s, reason, outcome, what)
	return what, res, nil
}

// record audits one NAS answer (or why none could be asked for).
func (w *coaWorker) record(ctx context.Context, ev store.PostureEvent, s store.AcctSession, reason, outcome, what string) {
	device := s.CallingStation
	if mac, err := policy.NormalizeMAC(s.CallingStation); err == nil {
		device = mac
	}
	detail := fmt.Sprintf("posture event %d (%s", ev.ID, ev.Kind)
	if ev.Detail != "" {
		detail += ": " + ev.Detail
	}
	detail += fmt.Sprintf("), session %s: %s", s.SessionID, what)
	if _, err := w.audit.Append(ctx, audit.Entry{
		Kind: audit.KindSystem, Door: "radius", Client: s.Client, User: s.UserName, Device: device,
		Outcome: outcome, Reason: reason, Actor: "coa", Detail: detail,
	}); err != nil && ctx.Err() == nil {
		w.log.Warn("cannot audit a CoA answer", "client", s.Client, "err", err)
	}
	w.log.Info("dynamic authorization", "client", s.Client, "user", s.UserName, "device", device, "reason", reason, "event", ev.ID)
}

// coaTarget is where the session's NAS listens for RFC 5176 requests: the
// NAS address accounting reported, when it lies inside the client's
// configured range (a NAS-IP-Address outside it could be anyone's); else
// the client's own address, when the client is a single host.
func coaTarget(c store.Client, s store.AcctSession, port int) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s.NASAddress); err == nil && c.Prefix.Contains(a.Unmap()) {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	if c.Prefix.IsSingleIP() {
		return netip.AddrPortFrom(c.Prefix.Addr(), uint16(port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("no NAS address: accounting reported %q, outside client %s's range %s; have the NAS send its own address as NAS-IP-Address, or give each NAS its own client (docs/coa.md)", s.NASAddress, c.Name, c.Prefix)
}

// moot says why an event must not end a session on client c, or "": a
// device that turned noncompliant (or left the inventory) matters only
// where the client's rule asks about devices, and a device whose
// compliance an admin has overridden, or that is compliant again, keeps
// its session. A revoked certificate or a disabled user always counts.
func (w *coaWorker) moot(ctx context.Context, ev store.PostureEvent, c store.Client) string {
	p := c.Policy.Posture
	switch ev.Kind {
	case store.EventDeviceNoncompliant:
		if p.Device != policy.DeviceCompliant {
			return "client " + c.Name + " does not require a compliant device"
		}
		if ev.DeviceID == 0 {
			return ""
		}
		d, err := w.store.DeviceByID(ctx, ev.DeviceID)
		if err != nil {
			return "" // gone, or unreadable: the event stands
		}
		if st, why := d.State(w.now(), time.Duration(p.Grace())*time.Second); st == store.Compliant {
			return fmt.Sprintf("device #%d is compliant now (%s)", d.ID, why)
		}
	case store.EventDeviceRemoved:
		if p.Device == "" && !p.Owner && !c.Policy.RequireDevice {
			return "client " + c.Name + " does not require a known device"
		}
	}
	return ""
}
