package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3576"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

const dasSecret = "das-secret"

// das is a NAS's RFC 5176 server: it checks each request's authenticator
// and answers as answer says (nil: never).
type das struct {
	conn net.PacketConn
	mu   sync.Mutex
	reqs []*radius.Packet
}

func startDAS(t *testing.T, addr string, answer func(req *radius.Packet) *radius.Packet) *das {
	t.Helper()
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &das{conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if !radius.IsAuthenticRequest(buf[:n], []byte(dasSecret)) {
				t.Errorf("the NAS got a request with a bad authenticator")
				continue
			}
			req, err := radius.Parse(buf[:n], []byte(dasSecret))
			if err != nil {
				t.Error(err)
				continue
			}
			d.mu.Lock()
			d.reqs = append(d.reqs, req)
			d.mu.Unlock()
			if answer == nil {
				continue
			}
			if resp := answer(req); resp != nil {
				b, err := msgauth.SignResponse(resp, req)
				if err != nil {
					t.Error(err)
					continue
				}
				conn.WriteTo(b, from)
			}
		}
	}()
	return d
}

func (d *das) port() int { return d.conn.LocalAddr().(*net.UDPAddr).Port }

func (d *das) requests() []*radius.Packet {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*radius.Packet(nil), d.reqs...)
}

type coaFixture struct {
	st  *store.Store
	w   *coaWorker
	now time.Time
}

func newCoAFixture(t *testing.T) *coaFixture {
	t.Helper()
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	au, err := audit.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := newCoAWorker(st, au, log)
	w.client.Tries, w.client.Wait = 2, 50*time.Millisecond
	return &coaFixture{st: st, w: w, now: time.Now()}
}

func (f *coaFixture) client(t *testing.T, name, prefix string, p policy.Posture) {
	t.Helper()
	err := f.st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.CreateClient(t.Context(), store.Client{Name: name, Door: "radius", Prefix: netip.MustParsePrefix(prefix), Secret: []byte(dasSecret), Policy: policy.Policy{Posture: p}}, f.now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *coaFixture) session(t *testing.T, client, id, user, station, nas string) {
	t.Helper()
	if err := f.st.UpsertAcct(t.Context(), store.AcctSession{
		Client: client, SessionID: id, UserName: user, CallingStation: station, NASAddress: nas, NASIPAttr: nas, NASIdentifier: "ap-" + client,
		Status: store.AcctActive, StartedAt: f.now, UpdatedAt: f.now,
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *coaFixture) event(t *testing.T, e store.PostureEvent) {
	t.Helper()
	if err := f.st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.AddPostureEvent(t.Context(), e, f.now) }); err != nil {
		t.Fatal(err)
	}
}

// results runs the worker once and returns the events' results, oldest
// first, and the CoA audit entries.
func (f *coaFixture) results(t *testing.T) ([]store.PostureEvent, []store.AuditRow) {
	t.Helper()
	f.w.run(t.Context())
	evs, err := f.st.RecentPostureEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	rows, err := f.st.AuditRows(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var coa []store.AuditRow
	for _, r := range rows {
		if r.Actor == "coa" {
			coa = append(coa, r)
		}
	}
	return evs, coa
}

func ack(req *radius.Packet) *radius.Packet { return req.Response(req.Code + 1) }

func TestNoncompliantDeviceIsDisconnected(t *testing.T) {
	f := newCoAFixture(t)
	nas := startDAS(t, "127.0.0.1:0", ack)
	f.client(t, "ap", "127.0.0.1/32", policy.Posture{Device: policy.DeviceCompliant, CoA: policy.CoADisconnect, CoAPort: nas.port()})
	f.session(t, "ap", "S1", "alice", "02-00-00-00-00-01:Staff", "127.0.0.1")
	f.session(t, "ap", "S2", "bob", "02-00-00-00-00-02", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, DeviceID: 1, UserName: "alice", MACs: []string{"02:00:00:00:00:01"}})
	evs, rows := f.results(t)
	if len(evs) != 1 || evs[0].DoneAt.IsZero() || !strings.Contains(evs[0].Result, `Disconnect-Request to 127.0.0.1:`) || !strings.Contains(evs[0].Result, "ACK after 1 try") {
		t.Fatalf("got events %+v, want one finished with the ACK", evs)
	}
	reqs := nas.requests()
	if len(reqs) != 1 {
		t.Fatalf("the NAS got %d requests, want 1 (bob's session is not the device's)", len(reqs))
	}
	r := reqs[0]
	if r.Code != radius.CodeDisconnectRequest || rfc2866.AcctSessionID_GetString(r) != "S1" || rfc2865.UserName_GetString(r) != "alice" ||
		rfc2865.CallingStationID_GetString(r) != "02-00-00-00-00-01:Staff" || rfc2865.NASIdentifier_GetString(r) != "ap-ap" || rfc2865.NASIPAddress_Get(r).String() != "127.0.0.1" {
		t.Errorf("got request %v, want a Disconnect-Request naming S1 as accounting did", r.Attributes)
	}
	if len(rows) != 1 || rows[0].Reason != reasonCoAACK || rows[0].Outcome != "disconnected" || rows[0].Device != "02:00:00:00:00:01" || rows[0].User != "alice" {
		t.Errorf("got audit %+v, want one coa_ack, disconnected", rows)
	}
}

func TestNAKSessionNotFoundRecorded(t *testing.T) {
	f := newCoAFixture(t)
	nas := startDAS(t, "127.0.0.1:0", func(req *radius.Packet) *radius.Packet {
		resp := req.Response(req.Code + 2)
		rfc3576.ErrorCause_Set(resp, rfc3576.ErrorCause_Value_SessionContextNotFound)
		return resp
	})
	f.client(t, "ap", "127.0.0.0/24", policy.Posture{CoA: policy.CoADisconnect, CoAPort: nas.port()})
	f.session(t, "ap", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "alice"})
	evs, rows := f.results(t)
	if len(evs) != 1 || !strings.Contains(evs[0].Result, `NAK 503 "Session Context Not Found"`) {
		t.Fatalf("got %+v, want the NAK 503 in the result", evs)
	}
	if len(rows) != 1 || rows[0].Reason != reasonCoANAK || rows[0].Outcome != "failed" || !strings.Contains(rows[0].Detail, "Session Context Not Found") {
		t.Errorf("got audit %+v, want one coa_nak naming the cause", rows)
	}
}

// TestSilentNASDoesNotStopTheWorker: a NAS that never answers is tried,
// timed out, audited and its event finished; the next event is handled.
func TestSilentNASDoesNotStopTheWorker(t *testing.T) {
	f := newCoAFixture(t)
	silent := startDAS(t, "127.0.0.1:0", nil)
	good := startDAS(t, "127.0.0.2:0", ack)
	f.client(t, "silent", "127.0.0.1/32", policy.Posture{CoA: policy.CoADisconnect, CoAPort: silent.port()})
	f.session(t, "silent", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "alice"})
	_, _ = f.results(t)
	if n := len(silent.requests()); n != 2 {
		t.Errorf("the silent NAS got %d requests, want 2 (the tries)", n)
	}
	f.client(t, "good", "127.0.0.2/32", policy.Posture{CoA: policy.CoADisconnect, CoAPort: good.port()})
	f.session(t, "good", "S2", "bob", "02:00:00:00:00:02", "127.0.0.2")
	f.event(t, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "bob"})
	evs, rows := f.results(t)
	if len(evs) != 2 || !strings.Contains(evs[0].Result, "timeout after 2 tries") || evs[0].DoneAt.IsZero() {
		t.Fatalf("got %+v, want the first event finished with a timeout", evs)
	}
	if !strings.Contains(evs[1].Result, "ACK after 1 try") {
		t.Errorf("got %q, want the second event's ACK", evs[1].Result)
	}
	if len(rows) != 2 || rows[0].Reason != reasonCoATimeout || rows[0].Outcome != "failed" || rows[1].Reason != reasonCoAACK {
		t.Errorf("got audit %+v, want coa_timeout then coa_ack", rows)
	}
}

func TestNoCoAForClientWithoutIt(t *testing.T) {
	f := newCoAFixture(t)
	f.client(t, "ap", "127.0.0.1/32", policy.Posture{Device: policy.DeviceCompliant})
	f.session(t, "ap", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.session(t, "ap", "S0", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, MACs: []string{"02:00:00:00:00:01"}})
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, MACs: []string{"02:00:00:00:00:09"}})
	evs, rows := f.results(t)
	if len(evs) != 2 || evs[0].Result != "no CoA for client ap" || evs[1].Result != "no active session" {
		t.Fatalf("got %+v, want no CoA for client ap, then no active session", evs)
	}
	if len(rows) != 0 {
		t.Errorf("got audit %+v, want none", rows)
	}
}

// TestQuarantineFallsBackToDisconnect: a NAS that cannot apply a VLAN
// mid-session (NAK 401 or 405, as hostapd answers) is asked to end the
// session instead, so the next login lands in quarantine.
func TestQuarantineFallsBackToDisconnect(t *testing.T) {
	f := newCoAFixture(t)
	nas := startDAS(t, "127.0.0.1:0", func(req *radius.Packet) *radius.Packet {
		if req.Code == radius.CodeCoARequest {
			resp := req.Response(radius.CodeCoANAK)
			rfc3576.ErrorCause_Set(resp, rfc3576.ErrorCause_Value_UnsupportedAttribute)
			return resp
		}
		return ack(req)
	})
	f.client(t, "ap", "127.0.0.1/32", policy.Posture{Device: policy.DeviceCompliant, OnFail: policy.OnFailQuarantine, QuarantineVLAN: 666, CoA: policy.CoAQuarantine, CoAPort: nas.port()})
	f.session(t, "ap", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, MACs: []string{"02:00:00:00:00:01"}})
	evs, rows := f.results(t)
	reqs := nas.requests()
	if len(reqs) != 2 || reqs[0].Code != radius.CodeCoARequest || reqs[1].Code != radius.CodeDisconnectRequest {
		t.Fatalf("got %d requests, want a CoA-Request then a Disconnect-Request", len(reqs))
	}
	if len(rows) != 2 || rows[0].Reason != reasonCoANAK || rows[1].Reason != reasonCoAACK || rows[1].Outcome != "disconnected" {
		t.Errorf("got audit %+v, want coa_nak then coa_ack", rows)
	}
	if !strings.Contains(evs[0].Result, "so Disconnect-Request") {
		t.Errorf("got %q, want it to tell of the fallback", evs[0].Result)
	}
}

func TestCoATargetStaysInsideTheClientRange(t *testing.T) {
	c := store.Client{Name: "site", Prefix: netip.MustParsePrefix("10.1.0.0/24")}
	if got, err := coaTarget(c, store.AcctSession{NASAddress: "10.1.0.7"}, 3799); err != nil || got.String() != "10.1.0.7:3799" {
		t.Errorf("got %v %v, want 10.1.0.7:3799", got, err)
	}
	if _, err := coaTarget(c, store.AcctSession{NASAddress: "192.0.2.1"}, 3799); err == nil {
		t.Error("a NAS-IP-Address outside the range was used")
	}
	one := store.Client{Name: "ap", Prefix: netip.MustParsePrefix("10.1.0.9/32")}
	if got, err := coaTarget(one, store.AcctSession{NASAddress: "172.16.0.1"}, 1700); err != nil || got.String() != "10.1.0.9:1700" {
		t.Errorf("got %v %v, want the client's own address 10.1.0.9:1700", got, err)
	}
}

func TestCoAWorkerStopsWithContext(t *testing.T) {
	f := newCoAFixture(t)
	silent := startDAS(t, "127.0.0.1:0", nil)
	f.w.client.Wait = 5 * time.Second
	f.client(t, "ap", "127.0.0.1/32", policy.Posture{CoA: policy.CoADisconnect, CoAPort: silent.port()})
	f.session(t, "ap", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "alice"})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	f.w.run(ctx)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("run took %v after its context ended", el)
	}
	evs, err := f.st.PendingPostureEvents(t.Context(), 10)
	if err != nil || len(evs) != 1 {
		t.Errorf("got %d pending events %v, want the interrupted one still pending", len(evs), err)
	}
}

// TestForgedACKIsNotAnACK: an ACK signed with another secret (a spoofer,
// or a NAS configured with a different one) is dropped; the event ends
// as a timeout that says replies were dropped, audited as coa_timeout.
func TestForgedACKIsNotAnACK(t *testing.T) {
	f := newCoAFixture(t)
	nas := startDAS(t, "127.0.0.1:0", func(req *radius.Packet) *radius.Packet {
		resp := ack(req)
		resp.Secret = []byte("guessed-secret")
		return resp
	})
	f.client(t, "ap", "127.0.0.1/32", policy.Posture{CoA: policy.CoADisconnect, CoAPort: nas.port()})
	f.session(t, "ap", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "alice"})
	evs, rows := f.results(t)
	if len(evs) != 1 || !strings.Contains(evs[0].Result, "timeout after 2 tries, 2 forged or stray replies dropped") {
		t.Fatalf("got %+v, want a timeout with the forged ACKs dropped", evs)
	}
	if len(rows) != 1 || rows[0].Reason != reasonCoATimeout || rows[0].Outcome != "failed" {
		t.Errorf("got audit %+v, want one coa_timeout", rows)
	}
}

// TestEventsThatDoNotConcernTheClient: a device's compliance ends sessions
// only where the client asks for a compliant device, and not when an
// admin's override (or a newer sync) says it is compliant now.
func TestEventsThatDoNotConcernTheClient(t *testing.T) {
	f := newCoAFixture(t)
	nas := startDAS(t, "127.0.0.1:0", ack)
	f.client(t, "open", "127.0.0.1/32", policy.Posture{CoA: policy.CoADisconnect, CoAPort: nas.port()})
	f.session(t, "open", "S1", "alice", "02:00:00:00:00:01", "127.0.0.1")
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, UserName: "alice", MACs: []string{"02:00:00:00:00:01"}})
	evs, _ := f.results(t)
	if len(evs) != 1 || !strings.Contains(evs[0].Result, "does not require a compliant device") || len(nas.requests()) != 0 {
		t.Fatalf("got %+v and %d requests, want none sent", evs, len(nas.requests()))
	}

	var id int64
	err := f.st.WithTx(t.Context(), func(tx *store.Tx) (err error) {
		id, err = tx.PutDevice(t.Context(), store.Device{Source: store.SourceIntune, SourceID: "d2", MACs: []string{"02:00:00:00:00:02"}, Compliance: store.Noncompliant, SyncedAt: f.now}, f.now)
		if err != nil {
			return err
		}
		return tx.SetDeviceOverride(t.Context(), id, store.Compliant, f.now.Add(time.Hour), "admin", "repaired", f.now)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.client(t, "strict", "127.0.0.2/32", policy.Posture{Device: policy.DeviceCompliant, CoA: policy.CoADisconnect, CoAPort: nas.port()})
	f.session(t, "strict", "S2", "bob", "02:00:00:00:00:02", "127.0.0.2")
	f.event(t, store.PostureEvent{Kind: store.EventDeviceNoncompliant, DeviceID: id, UserName: "bob", MACs: []string{"02:00:00:00:00:02"}})
	evs, _ = f.results(t)
	if len(evs) != 2 || !strings.Contains(evs[1].Result, "is compliant now") || len(nas.requests()) != 0 {
		t.Fatalf("got %+v and %d requests, want the overridden device kept", evs, len(nas.requests()))
	}
}
