package radius

import (
	"bytes"
	"crypto/md5"
	"flag"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/eap"
)

var update = flag.Bool("update", false, "rewrite the seed files in testdata/fuzz")

const (
	fuzzSecret   = "fuzz-shared-secret-0123456789"
	fuzzUser     = "alice"
	fuzzPassword = "correct horse battery"
)

var fuzzFrom = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}

// realServer wires a Server to a real gate the way the daemon does
// (serve.go runDaemon), with cheap password hashing: a client for
// 127.0.0.1/32 with the default policy except that Message-Authenticator
// is optional (so fuzzed input reaches the decoder), and a user with a
// password and TOTP.
func realServer(tb testing.TB) *Server {
	tb.Helper()
	ctx := tb.Context()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	core := appliancetest.New(tb, appliancetest.Options{})
	adm := core.Admin
	pol := policy.Default()
	pol.RequireMessageAuthenticator = false
	_, err := adm.AddClient(ctx, admin.NewClient{Name: "fuzz-nas", Address: "127.0.0.1/32", Secret: secrets.Secret(fuzzSecret), Policy: pol})
	must(err)
	must(adm.AddUser(ctx, admin.NewUser{Name: fuzzUser, Groups: []string{"staff"}, Password: secrets.Secret(fuzzPassword)}))
	_, err = adm.EnrollTOTP(ctx, fuzzUser)
	must(err)
	// Without lockouts every input is judged on its own, whatever the
	// fuzzer tried before: reproducible coverage.
	must(adm.SetSetting(ctx, "lockout_threshold", "0"))

	// Each call of Now is a minute later, so the reply cache (30 s) never
	// answers a mutated packet with an earlier input's reply.
	var ticks atomic.Int64
	base := time.Now()
	// The EAP server as the daemon sets it up (internal/daemon openEAP).
	cp, kp, _, err := eap.EnsureCertificate(tb.TempDir())
	must(err)
	tlsCfg, err := eap.TLSConfig(cp, kp)
	must(err)
	return &Server{
		Gate: core.Gate, Clients: core.Clients(appliance.DoorRADIUS),
		Accounting: core.Gate, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Minute) },
		EAP: &eap.Server{Gate: core.Gate, TLS: tlsCfg},
	}
}

type seed struct {
	name string
	b    []byte
	file bool // also kept in testdata/fuzz/FuzzAccessRequest
}

// fuzzSeeds are real Access-Requests (and a few other packets) as NASes
// send them, with fixed identifiers and authenticators so they are the same
// at every run.
func fuzzSeeds(tb testing.TB) []seed {
	tb.Helper()
	secret := []byte(fuzzSecret)
	n := 0
	packet := func(code radius.Code) *radius.Packet {
		n++
		p := &radius.Packet{Code: code, Identifier: byte(n), Secret: secret}
		p.Authenticator = md5.Sum([]byte("clinicgate fuzz seed " + strconv.Itoa(n)))
		return p
	}
	pap := func(user, pw string) *radius.Packet {
		p := packet(radius.CodeAccessRequest)
		rfc2865.UserName_SetString(p, user)
		p.Add(rfc2865.UserPassword_Type, hidePassword([]byte(pw), secret, p.Authenticator[:]))
		rfc2865.NASIdentifier_SetString(p, "ap-lobby")
		rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Wireless80211)
		rfc2865.CalledStationID_SetString(p, "00-11-22-33-44-55:clinic")
		rfc2865.CallingStationID_SetString(p, "AA-BB-CC-DD-EE-FF")
		return p
	}
	ma := func(p *radius.Packet) []byte { return withMA(encode(tb, p), fuzzSecret, 16) }

	var seeds []seed
	add := func(name string, file bool, b []byte) { seeds = append(seeds, seed{name, b, file}) }

	add("pap", true, encode(tb, pap(fuzzUser, fuzzPassword)))
	add("pap-message-authenticator", true, ma(pap(fuzzUser, fuzzPassword)))
	add("pap-appended-code", false, ma(pap(fuzzUser, fuzzPassword+",123456")))
	add("pap-wrong-password", false, ma(pap(fuzzUser, "wrong password")))
	add("pap-unknown-user", false, ma(pap("bob", fuzzPassword)))
	add("pap-128-byte-password", false, ma(pap(fuzzUser, strings.Repeat("p", 128))))

	p := pap(fuzzUser, "123456")
	rfc2865.State_Set(p, bytes.Repeat([]byte{0x5a}, 16))
	add("challenge-answer-with-state", true, ma(p))

	p = packet(radius.CodeAccessRequest)
	rfc2865.UserName_SetString(p, fuzzUser)
	p.Add(rfc2865.CHAPPassword_Type, append([]byte{1}, bytes.Repeat([]byte{0xc4}, 16)...))
	p.Add(rfc2865.CHAPChallenge_Type, bytes.Repeat([]byte{0x11}, 16))
	add("chap", true, encode(tb, p))

	p = packet(radius.CodeAccessRequest)
	rfc2865.UserName_SetString(p, fuzzUser)
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 11, bytes.Repeat([]byte{1}, 16)))
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 25, bytes.Repeat([]byte{2}, 50)))
	add("mschapv2", false, encode(tb, p))

	p = packet(radius.CodeAccessRequest)
	rfc2865.UserName_SetString(p, fuzzUser)
	p.Add(rfc2869.EAPMessage_Type, radius.Attribute("\x02\x01\x00\x0a\x01alice"))
	add("eap-identity", true, ma(p))

	p = pap(fuzzUser, fuzzPassword)
	p.Add(rfc2865.ProxyState_Type, radius.Attribute("proxy-1"))
	p.Add(rfc2865.VendorSpecific_Type, vsa(9, 1, []byte("cisco-avpair=shell:priv-lvl=15")))
	p.Add(0, radius.Attribute("type zero"))
	p.Add(200, bytes.Repeat([]byte{0xff}, 253))
	p.Add(rfc2865.Class_Type, radius.Attribute{})
	rfc2865.NASIPAddress_Set(p, net.IPv4(192, 0, 2, 1))
	p.Add(rfc2865.ProxyState_Type, radius.Attribute("proxy-2"))
	add("junk-attributes", true, ma(p))

	p = packet(radius.CodeAccessRequest)
	p.Add(rfc2865.UserName_Type, radius.Attribute("mallory"))
	p.Add(rfc2865.UserName_Type, radius.Attribute(fuzzUser))
	p.Add(rfc2865.UserPassword_Type, hidePassword([]byte(fuzzPassword), secret, p.Authenticator[:]))
	add("two-user-names", false, encode(tb, p))

	add("padding-past-length", false, append(ma(pap(fuzzUser, fuzzPassword)), 0, 0, 0, 0, 1, 2, 3))

	p = packet(radius.CodeStatusServer)
	rfc2865.NASIdentifier_SetString(p, "monitor")
	add("status-server", true, ma(p))

	p = packet(radius.CodeAccountingRequest)
	rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(p, "sess-1")
	add("accounting-request-on-auth-port", false, acctRequest(tb, p, fuzzSecret))
	// An EAP-TTLS response carrying the start of a ClientHello, with no
	// conversation (State) to belong to.
	p = packet(radius.CodeAccessRequest)
	rfc2865.UserName_SetString(p, "anonymous")
	rfc2865.CallingStationID_SetString(p, "AA-BB-CC-DD-EE-FF")
	p.Add(rfc2869.EAPMessage_Type, radius.Attribute("\x02\x02\x00\x0f\x15\x80\x00\x00\x00\x05\x16\x03\x01\x00\x00"))
	add("eap-ttls-without-state", true, ma(p))
	// The other methods' first messages, and PEAP's Result TLV answer,
	// each without a conversation; and an EAP-Start.
	for _, e := range []struct {
		name string
		msg  string
	}{
		{"eap-start", ""},
		{"eap-peap-without-state", "\x02\x02\x00\x0f\x19\x80\x00\x00\x00\x05\x16\x03\x01\x00\x00"},
		{"eap-tls-without-state", "\x02\x02\x00\x0f\x0d\x80\x00\x00\x00\x05\x16\x03\x01\x00\x00"},
		{"eap-nak-without-state", "\x02\x02\x00\x07\x03\x19\x0d"},
		{"eap-peap-result-tlv-without-state", "\x02\x05\x00\x0b\x21\x80\x03\x00\x02\x00\x01"},
	} {
		p = packet(radius.CodeAccessRequest)
		rfc2865.UserName_SetString(p, "anonymous")
		rfc2865.CallingStationID_SetString(p, "AA-BB-CC-DD-EE-FF")
		p.Add(rfc2869.EAPMessage_Type, radius.Attribute(e.msg))
		add(e.name, true, ma(p))
	}
	return seeds
}

// FuzzAccessRequest sends arbitrary datagrams down the whole path (decode,
// decide with a real gate, encode). It must never panic; every reply must
// be a signed Access-Accept, -Reject or -Challenge answering the request's
// identifier, carry only fixed safe Reply-Message texts, and an Accept or a
// Challenge must only ever follow the enrolled user's correct password (or,
// with EAP-Message, be a step of an EAP conversation, which grants nothing).
func FuzzAccessRequest(f *testing.F) {
	s := realServer(f)
	for _, sd := range fuzzSeeds(f) {
		f.Add(sd.b)
	}
	safe := []string{
		appliance.MsgDenied, appliance.MsgEnterCode, appliance.MsgAppendCode, appliance.MsgDisabled,
		appliance.MsgExpired, appliance.MsgOutsideHours, appliance.MsgNotAllowed, appliance.MsgDevice,
		appliance.MsgNotEnrolled, appliance.MsgBadCode, appliance.MsgBusy, appliance.MsgPwExpired, appliance.MsgLocked,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reply := s.process(t.Context(), kindAuth, data, fuzzFrom)
		if reply == nil {
			return
		}
		if _, err := radius.Parse(reply, []byte(fuzzSecret)); err != nil {
			t.Fatalf("the reply does not parse: %v", err)
		}
		p := checkSigned(t, reply, data, fuzzSecret)
		if p == nil {
			t.FailNow()
		}
		for _, m := range all(p, rfc2865.ReplyMessage_Type) {
			if !slices.Contains(safe, m) {
				t.Errorf("got Reply-Message %q, want one of the fixed safe texts", m)
			}
		}
		switch {
		case radius.Code(data[0]) == radius.CodeStatusServer:
			if p.Code != radius.CodeAccessAccept || len(p.Attributes) != 1 {
				t.Errorf("got %v with %d attributes to a Status-Server, want an Access-Accept with only a Message-Authenticator", p.Code, len(p.Attributes))
			}
		case p.Code == radius.CodeAccessChallenge && p.Get(rfc2869.EAPMessage_Type) != nil:
			// A step of an EAP conversation: no password was verified,
			// and none may be claimed. It answers only an EAP request.
			if q, err := radius.Parse(data, []byte(fuzzSecret)); err != nil || !slices.ContainsFunc(q.Attributes, func(a *radius.AVP) bool { return a.Type == rfc2869.EAPMessage_Type }) {
				t.Errorf("got an EAP Access-Challenge for a request without EAP-Message")
			}
		case p.Code == radius.CodeAccessAccept || p.Code == radius.CodeAccessChallenge:
			if err := hasCredentials(data); err != "" {
				t.Errorf("got %v for a request that %s", p.Code, err)
			}
		}
	})
}

// hasCredentials says what is missing from an Access-Request for it to
// carry the enrolled user's name and password ("" when nothing is).
func hasCredentials(data []byte) string {
	req, err := radius.Parse(data, []byte(fuzzSecret))
	if err != nil {
		return "does not parse"
	}
	if req.Code != radius.CodeAccessRequest {
		return "is a " + req.Code.String()
	}
	names := all(req, rfc2865.UserName_Type)
	if len(names) != 1 || !strings.EqualFold(names[0], fuzzUser) {
		return "does not name " + fuzzUser + " once"
	}
	pws := all(req, rfc2865.UserPassword_Type)
	if len(pws) != 1 {
		return "has no single User-Password"
	}
	if pw := revealPassword([]byte(pws[0]), []byte(fuzzSecret), req.Authenticator[:]); !bytes.HasPrefix(pw, []byte(fuzzPassword)) {
		return "does not carry the password"
	}
	return ""
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzAccessRequest in step with
// fuzzSeeds (the shared secret, the packets); -update rewrites it.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzAccessRequest")
	kept := 0
	for _, sd := range fuzzSeeds(t) {
		if !sd.file {
			continue
		}
		kept++
		path := filepath.Join(dir, sd.name)
		want := "go test fuzz v1\n[]byte(" + strconv.Quote(string(sd.b)) + ")\n"
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run: go test ./radius -run TestFuzzSeedCorpus -update)", err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s is out of date (run: go test ./radius -run TestFuzzSeedCorpus -update)", path)
		}
	}
	if kept < 3 {
		t.Errorf("got %d seed files, want at least 3", kept)
	}
}

// TestFuzzSeedsReachTheGate checks that the seeds mean what they say
// against the real gate, so the fuzzer starts from the interesting paths.
func TestFuzzSeedsReachTheGate(t *testing.T) {
	s := realServer(t)
	want := map[string]radius.Code{
		"pap":                               radius.CodeAccessChallenge, // TOTP enrolled: the code is asked for
		"pap-message-authenticator":         radius.CodeAccessChallenge,
		"pap-appended-code":                 radius.CodeAccessReject, // not the current code
		"pap-wrong-password":                radius.CodeAccessReject,
		"pap-unknown-user":                  radius.CodeAccessReject,
		"pap-128-byte-password":             radius.CodeAccessReject,
		"challenge-answer-with-state":       radius.CodeAccessReject, // no such challenge
		"chap":                              radius.CodeAccessReject,
		"mschapv2":                          radius.CodeAccessReject,
		"eap-identity":                      radius.CodeAccessChallenge, // EAP-TTLS Start
		"eap-ttls-without-state":            radius.CodeAccessReject,
		"eap-start":                         radius.CodeAccessChallenge, // EAP-Request/Identity
		"eap-peap-without-state":            radius.CodeAccessReject,
		"eap-tls-without-state":             radius.CodeAccessReject,
		"eap-nak-without-state":             radius.CodeAccessReject,
		"eap-peap-result-tlv-without-state": radius.CodeAccessReject,
		"junk-attributes":                   radius.CodeAccessChallenge,
		"two-user-names":                    radius.CodeAccessReject,
		"padding-past-length":               radius.CodeAccessChallenge,
		"status-server":                     radius.CodeAccessAccept,
		"accounting-request-on-auth-port":   0, // dropped
	}
	for _, sd := range fuzzSeeds(t) {
		t.Run(sd.name, func(t *testing.T) {
			w, ok := want[sd.name]
			if !ok {
				t.Fatalf("no expectation for seed %q", sd.name)
			}
			reply := s.process(t.Context(), kindAuth, sd.b, fuzzFrom)
			if w == 0 {
				if reply != nil {
					t.Errorf("got a reply, want none")
				}
				return
			}
			if reply == nil {
				t.Fatalf("got no reply, want %v", w)
			}
			if p := checkSigned(t, reply, sd.b, fuzzSecret); p != nil && p.Code != w {
				t.Errorf("got %v, want %v", p.Code, w)
			}
		})
	}
}
