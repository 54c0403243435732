package radius

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc3580"
	"layeh.com/radius/vendors/microsoft"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

const door = string(appliance.DoorRADIUS)

// Vendor-Specific attributes of Microsoft (RFC 2548) carry MS-CHAP.
const vendorMicrosoft = 311

func (s *Server) handle(conn net.PacketConn, k kind, j job) {
	send := func(reply []byte) {
		if _, err := conn.WriteTo(reply, j.from); err != nil && !s.closed.Load() {
			s.Logger.Warn("could not send a RADIUS reply", "to", j.from.String(), "err", err)
		}
	}
	if reply := s.processTo(context.Background(), k, j.buf, j.from, j.at, send); reply != nil {
		send(reply)
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		ap := v.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// process is the whole request path without the socket: identify the
// client, decode, check integrity, decide, encode. A nil result means the
// request is dropped without an answer, as RFC 2865 asks for packets that
// cannot be trusted.
func (s *Server) process(ctx context.Context, k kind, b []byte, from net.Addr) []byte {
	s.init()
	return s.processTo(ctx, k, b, from, s.Now(), nil)
}

// processTo is process with later, which sends a reply decided after
// process returned (a push MFA approved while the worker went on to other
// requests); with later nil a pending decision is waited for.
func (s *Server) processTo(ctx context.Context, k kind, b []byte, from net.Addr, at time.Time, later func([]byte)) []byte {
	s.init()
	src := addrPortOf(from)
	if len(b) < 20 {
		s.dropped("truncated", "", src.String())
		s.bad.Warn("dropped a truncated RADIUS packet", "from", src.String(), "bytes", len(b))
		return nil
	}
	client, ok, err := s.Clients.Lookup(ctx, src.Addr())
	if err != nil {
		s.dropped("store_error", "", src.String())
		s.bad.Warn("could not look up RADIUS clients; request dropped", "err", err)
		return nil
	}
	if !ok {
		s.dropped("unknown_client", "", src.Addr().String())
		s.unknown.Warn("dropped a request from an address that is not a configured RADIUS client (add it with 'clinicgate client add')", "from", src.Addr().String())
		return nil
	}
	pkt, err := radius.Parse(b, client.Secret)
	if err != nil {
		s.dropped("malformed", client.Name, src.String())
		s.bad.Warn("dropped a malformed RADIUS packet", "client", client.Name, "from", src.String(), "err", err)
		return nil
	}
	b = b[:binary.BigEndian.Uint16(b[2:4])] // octets past Length are padding
	switch {
	case k == kindAuth && pkt.Code == radius.CodeAccessRequest:
		return s.access(ctx, b, pkt, client, src, at, later)
	case k == kindAuth && pkt.Code == radius.CodeStatusServer:
		return s.status(b, pkt, client, src)
	case k == kindAcct && pkt.Code == radius.CodeAccountingRequest:
		return s.accounting(ctx, b, pkt, client, src)
	}
	s.dropped("unexpected_code", client.Name, src.String())
	s.bad.Warn("dropped a RADIUS packet of a kind this port does not answer", "client", client.Name, "code", pkt.Code.String())
	return nil
}

func dedupKey(src netip.AddrPort, pkt *radius.Packet) string {
	return src.String() + "/" + strconv.Itoa(int(pkt.Code)) + "/" + strconv.Itoa(int(pkt.Identifier)) + "/" + string(pkt.Authenticator[:])
}

func (s *Server) access(ctx context.Context, b []byte, pkt *radius.Packet, client appliance.Client, src netip.AddrPort, at time.Time, later func([]byte)) []byte {
	var notes []string
	// Present even when empty (an EAP-Start), which Get cannot tell.
	hasEAP := slices.ContainsFunc(pkt.Attributes, func(a *radius.AVP) bool { return a.Type == rfc2869.EAPMessage_Type })
	if err := msgauth.Verify(b, client.Secret); err != nil {
		// RFC 3579 §3.2: an EAP request without a Message-Authenticator
		// is discarded, whatever the client's relaxation.
		if errors.Is(err, msgauth.ErrMissing) && !client.Policy.RequireMessageAuthenticator && !hasEAP {
			// The operator relaxed this for old hardware; the audit says so.
			notes = append(notes, "message_authenticator_absent")
		} else {
			cause := "message_authenticator"
			hint := "check that the NAS and clinicgate use the same shared secret"
			if errors.Is(err, msgauth.ErrMissing) {
				cause = "message_authenticator_missing"
				hint = "turn on Message-Authenticator on the NAS, or for old hardware relax it with 'clinicgate client set NAME --require-message-authenticator=false'"
			}
			s.dropped(cause, client.Name, src.String())
			s.bad.Warn("dropped an Access-Request: "+err.Error()+"; "+hint, "client", client.Name, "from", src.String())
			return nil
		}
	}
	now := s.Now()
	key := dedupKey(src, pkt)
	if reply, inProgress := s.dedup.begin(key, at); reply != nil {
		s.Metrics.Duplicate(door)
		return reply
	} else if inProgress {
		s.Metrics.Drop(door, "duplicate_in_progress")
		return nil
	}
	req := toRequest(pkt, client, src, notes)
	if hasEAP && s.EAP != nil && req.Invalid == "" {
		reply := s.eapAccess(ctx, pkt, req, client)
		s.dedup.finish(key, reply, s.Now())
		return reply
	}
	req.Async = true
	dctx, cancel := context.WithTimeout(ctx, s.DecideTimeout)
	d, err := s.Gate.Decide(dctx, req)
	cancel()
	if err == nil && d.Pending != nil {
		return s.pending(key, pkt, req, client, d.Pending, later)
	}
	return s.reply(key, now, pkt, req, client, d, err)
}

// pending answers a request whose decision waits on a push: the worker
// goes back to the queue, the request's retransmits are dropped and
// reported to the pending decision, and the reply is sent (and cached for
// later retransmits) once it is final.
func (s *Server) pending(key string, pkt *radius.Packet, req appliance.Request, client appliance.Client, p *appliance.Pending, later func([]byte)) []byte {
	// Held for as long as any pending decision can last: a resend must
	// never find the entry gone and start a second decision (a second
	// push).
	s.dedup.hold(key, p, s.Now().Add(time.Duration(policy.MaxPushBudget)*time.Second+time.Minute))
	if later == nil {
		d, err := p.Result()
		return s.reply(key, s.Now(), pkt, req, client, d, err)
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		d, err := p.Result()
		if reply := s.reply(key, s.Now(), pkt, req, client, d, err); reply != nil {
			later(reply)
		}
	}()
	return nil
}

// reply encodes a decision, caches it for retransmits and returns it.
func (s *Server) reply(key string, now time.Time, pkt *radius.Packet, req appliance.Request, client appliance.Client, d appliance.Decision, err error) []byte {
	if err != nil {
		// The gate already turned this into a Reject; say why in the log.
		s.Logger.Error("could not decide a login; rejected", "client", client.Name, "err", err)
		d.Outcome, d.Message, d.State = appliance.Reject, appliance.MsgDenied, nil
		d.Attributes = appliance.Attributes{}
	}
	var reply []byte
	if req.MSCHAP != nil {
		if reply, err = encodeMSCHAP(pkt, req.MSCHAP, d); errors.Is(err, errNoProof) {
			s.Logger.Error(err.Error()+"; rejected", "client", client.Name)
			err = nil
		}
	} else {
		reply, err = encodeDecision(pkt, d)
	}
	if err != nil {
		s.Logger.Error("could not encode a RADIUS reply", "client", client.Name, "err", err)
		s.dedup.finish(key, nil, now)
		return nil
	}
	s.dedup.finish(key, reply, s.Now())
	return reply
}

// toRequest translates an Access-Request. Input it can decode but not
// accept is marked Invalid, so the gate refuses and audits it.
func toRequest(pkt *radius.Packet, client appliance.Client, src netip.AddrPort, notes []string) appliance.Request {
	req := appliance.Request{
		Door: appliance.DoorRADIUS, Client: client, Source: src.Addr(), Method: appliance.MethodNone, Notes: notes,
	}
	var names, passwords, states [][]byte
	var chap, mschap, eap bool
	for _, a := range pkt.Attributes {
		switch a.Type {
		case rfc2865.UserName_Type:
			names = append(names, a.Attribute)
		case rfc2865.UserPassword_Type:
			passwords = append(passwords, a.Attribute)
		case rfc2865.State_Type:
			states = append(states, a.Attribute)
		case rfc2865.CHAPPassword_Type:
			chap = true
		case rfc2869.EAPMessage_Type:
			eap = true
		case rfc2865.VendorSpecific_Type:
			if len(a.Attribute) >= 4 && binary.BigEndian.Uint32(a.Attribute) == vendorMicrosoft {
				mschap = true
			}
		}
	}
	if len(names) > 0 {
		req.User = string(names[0])
	}
	req.Device = rfc2865.CallingStationID_GetString(pkt)
	if id := rfc2865.NASIdentifier_GetString(pkt); id != "" {
		req.NAS = id
	} else if ip := rfc2865.NASIPAddress_Get(pkt); ip != nil {
		req.NAS = ip.String()
	}
	switch {
	case len(names) != 1:
		req.Invalid = appliance.ReasonBadRequest
		req.Notes = append(req.Notes, fmt.Sprintf("%d User-Name attributes", len(names)))
	case len(states) > 1:
		req.Invalid = appliance.ReasonBadRequest
		req.Notes = append(req.Notes, "several State attributes")
	case eap:
		req.Method = appliance.MethodEAP
	case chap:
		req.Method = appliance.MethodCHAP
	case mschap:
		mschapRequest(&req, pkt, req.User, len(passwords))
	case len(passwords) == 1:
		req.Method = appliance.MethodPAP
		pw, err := radius.UserPassword(passwords[0], pkt.Secret, pkt.Authenticator[:])
		if err != nil {
			// RFC 2865 §5.2: 16 to 128 octets in steps of 16.
			req.Invalid = appliance.ReasonBadRequest
			req.Notes = append(req.Notes, fmt.Sprintf("User-Password of %d bytes", len(passwords[0])))
		}
		req.Password = pw
	case len(passwords) > 1:
		req.Invalid = appliance.ReasonBadRequest
		req.Notes = append(req.Notes, "several User-Password attributes")
	}
	if len(states) == 1 {
		req.State = append([]byte{}, states[0]...)
	}
	return req
}

// encodeDecision writes the Decision as a signed Access-Accept, -Reject or
// -Challenge.
func encodeDecision(pkt *radius.Packet, d appliance.Decision) ([]byte, error) {
	return encodeDecisionWith(pkt, d, nil)
}

// encodeDecisionWith is encodeDecision with the door's own attributes
// (EAP's) added first, so that no upstream attribute of the same type
// passes through beside them.
func encodeDecisionWith(pkt *radius.Packet, d appliance.Decision, add func(resp *radius.Packet) error) ([]byte, error) {
	code := radius.CodeAccessReject
	switch d.Outcome {
	case appliance.Accept:
		code = radius.CodeAccessAccept
	case appliance.Challenge:
		code = radius.CodeAccessChallenge
	}
	resp := pkt.Response(code)
	if add != nil {
		if err := add(resp); err != nil {
			return nil, err
		}
	}
	switch code {
	case radius.CodeAccessAccept:
		a := d.Attributes
		if a.VLAN > 0 {
			// IEEE 802.1X dynamic VLAN (RFC 3580 §3.31). The group id goes
			// without a tag byte: it starts with a digit, which RFC 2868 reads
			// as the string itself, and every NAS understands that form.
			if err := rfc2868.TunnelType_Add(resp, 0, rfc2868.TunnelType(rfc3580.TunnelType_Value_VLAN)); err != nil {
				return nil, err
			}
			if err := rfc2868.TunnelMediumType_Add(resp, 0, rfc2868.TunnelMediumType_Value_IEEE802); err != nil {
				return nil, err
			}
			resp.Add(rfc2868.TunnelPrivateGroupID_Type, radius.Attribute(strconv.Itoa(a.VLAN)))
		}
		if a.SessionTimeout > 0 {
			if err := rfc2865.SessionTimeout_Set(resp, rfc2865.SessionTimeout(a.SessionTimeout)); err != nil {
				return nil, err
			}
		}
		if a.Class != "" {
			if err := rfc2865.Class_SetString(resp, a.Class); err != nil {
				return nil, err
			}
		}
		if a.FilterID != "" {
			// A role (quarantine, docs/posture.md) for controllers that
			// place stations by Filter-Id rather than VLAN.
			if err := rfc2865.FilterID_SetString(resp, a.FilterID); err != nil {
				return nil, err
			}
		}
		// Attributes an upstream passed on, unless clinicgate already
		// answers with that type: its own policy wins.
		set := map[radius.Type]bool{}
		for _, x := range resp.Attributes {
			set[x.Type] = true
		}
		for _, p := range d.Passthrough {
			if t := radius.Type(p.Type); !set[t] && len(p.Value) <= 253 {
				resp.Add(t, radius.Attribute(p.Value))
			}
		}
	case radius.CodeAccessChallenge:
		if err := rfc2865.State_Set(resp, d.State); err != nil {
			return nil, err
		}
	}
	if d.Message != "" {
		if err := rfc2865.ReplyMessage_SetString(resp, d.Message); err != nil {
			return nil, err
		}
	}
	copyProxyState(resp, pkt)
	return msgauth.SignResponse(resp, pkt)
}

// eapAccess answers an Access-Request that carries EAP: the EAP server runs the
// conversation and, at its end, the gate decides; the answer carries the
// EAP message, and with an Accept the MPPE keys (RFC 2548) and the user's
// name.
func (s *Server) eapAccess(ctx context.Context, pkt *radius.Packet, base appliance.Request, client appliance.Client) []byte {
	msg, _ := rfc2869.EAPMessage_Lookup(pkt)
	dctx, cancel := context.WithTimeout(ctx, s.DecideTimeout)
	// The smallest Framed-MTU, should a NAS send several.
	mtu := 0
	if mtus, err := rfc2865.FramedMTU_Gets(pkt); err == nil {
		for _, m := range mtus {
			if mtu == 0 || (int(m) > 0 && int(m) < mtu) {
				mtu = int(m)
			}
		}
	}
	rep := s.EAP.Handle(dctx, eap.Request{Base: base, EAP: msg, State: base.State, FramedMTU: mtu, Methods: client.Policy.EAPAllowed()})
	cancel()
	if rep.Outcome == eap.Drop {
		return nil
	}
	reply, err := encodeEAP(pkt, rep)
	if err != nil {
		s.Logger.Error("could not encode a RADIUS reply to an EAP request", "client", client.Name, "err", err)
		return nil
	}
	return reply
}

// encodeEAP writes the EAP server's answer as a signed Access-Challenge,
// -Accept or -Reject.
func encodeEAP(pkt *radius.Packet, rep eap.Reply) ([]byte, error) {
	var reply []byte
	var err error
	switch rep.Outcome {
	case eap.Challenge:
		resp := pkt.Response(radius.CodeAccessChallenge)
		if err = rfc2869.EAPMessage_Set(resp, rep.EAP); err == nil {
			err = rfc2865.State_Set(resp, rep.State)
		}
		if err == nil {
			copyProxyState(resp, pkt)
			reply, err = msgauth.SignResponse(resp, pkt)
		}
	default:
		// An Accept only when both say so: the EAP conversation ended well
		// and the gate accepted.
		d := rep.Decision
		accept := rep.Outcome == eap.Accept && d.Outcome == appliance.Accept
		if !accept {
			d.Outcome = appliance.Reject
		}
		reply, err = encodeDecisionWith(pkt, d, func(resp *radius.Packet) error {
			if err := rfc2869.EAPMessage_Set(resp, rep.EAP); err != nil {
				return err
			}
			if !accept {
				return nil
			}
			if len(rep.MSK) != 64 {
				return errors.New("an EAP Accept without its 64-byte MSK")
			}
			if d.User != "" {
				if err := rfc2865.UserName_SetString(resp, d.User); err != nil {
					return err
				}
			}
			if err := microsoft.MSMPPERecvKey_Add(resp, rep.MSK[:32]); err != nil {
				return err
			}
			return microsoft.MSMPPESendKey_Add(resp, rep.MSK[32:64])
		})
	}
	return reply, err
}

// copyProxyState copies Proxy-State attributes in order (RFC 2865 §5.33).
func copyProxyState(resp, req *radius.Packet) {
	for _, a := range req.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			resp.Add(a.Type, a.Attribute)
		}
	}
}

// status answers Status-Server (RFC 5997), which must carry a valid
// Message-Authenticator whatever the client's setting.
func (s *Server) status(b []byte, pkt *radius.Packet, client appliance.Client, src netip.AddrPort) []byte {
	if err := msgauth.Verify(b, client.Secret); err != nil {
		s.dropped("message_authenticator", client.Name, src.String())
		s.bad.Warn("dropped a Status-Server: "+err.Error(), "client", client.Name, "from", src.String())
		return nil
	}
	resp := pkt.Response(radius.CodeAccessAccept)
	reply, err := msgauth.SignResponse(resp, pkt)
	if err != nil {
		return nil
	}
	return reply
}

func (s *Server) accounting(ctx context.Context, b []byte, pkt *radius.Packet, client appliance.Client, src netip.AddrPort) []byte {
	if s.Accounting == nil {
		s.Metrics.Drop(door, "accounting_off")
		return nil
	}
	if !radius.IsAuthenticRequest(b, client.Secret) {
		s.dropped("bad_authenticator", client.Name, src.String())
		s.bad.Warn("dropped an Accounting-Request with a bad authenticator; check that the NAS and clinicgate use the same shared secret", "client", client.Name, "from", src.String())
		return nil
	}
	now := s.Now()
	key := dedupKey(src, pkt)
	if reply, inProgress := s.dedup.begin(key, now); reply != nil {
		s.Metrics.Duplicate(door)
		return reply
	} else if inProgress {
		s.Metrics.Drop(door, "duplicate_in_progress")
		return nil
	}
	status := rfc2866.AcctStatusType_Get(pkt)
	var err error
	switch status {
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctStatusType_Value_InterimUpdate:
		a := appliance.AcctSession{
			Client:         client.Name,
			SessionID:      rfc2866.AcctSessionID_GetString(pkt),
			UserName:       rfc2865.UserName_GetString(pkt),
			CallingStation: rfc2865.CallingStationID_GetString(pkt),
			NASAddress:     src.Addr().String(),
			Status:         appliance.AcctActive,
			StartedAt:      now, UpdatedAt: now,
			SessionTime:  int64(rfc2866.AcctSessionTime_Get(pkt)),
			InputOctets:  int64(rfc2866.AcctInputOctets_Get(pkt)) + int64(rfc2869.AcctInputGigawords_Get(pkt))<<32,
			OutputOctets: int64(rfc2866.AcctOutputOctets_Get(pkt)) + int64(rfc2869.AcctOutputGigawords_Get(pkt))<<32,
		}
		if ip := rfc2865.NASIPAddress_Get(pkt); ip != nil {
			a.NASAddress = ip.String()
			a.NASIPAttr = a.NASAddress
		} else if ip := rfc3162.NASIPv6Address_Get(pkt); ip != nil {
			a.NASIPAttr = ip.String()
		}
		// Kept as sent, for RFC 5176 requests (radius/coa.go).
		if id := rfc2865.NASIdentifier_GetString(pkt); len(id) <= 253 {
			a.NASIdentifier = id
		}
		if ip := rfc2865.FramedIPAddress_Get(pkt); ip != nil {
			a.FramedAddress = ip.String()
		}
		if status == rfc2866.AcctStatusType_Value_Stop {
			a.Status, a.StoppedAt = appliance.AcctStopped, now
			if c, err := rfc2866.AcctTerminateCause_Lookup(pkt); err == nil {
				a.TerminateCause = c.String()
			}
		}
		if a.SessionID == "" || len(a.SessionID) > 253 {
			s.dedup.finish(key, nil, now)
			s.Metrics.Drop(door, "malformed")
			s.bad.Warn("dropped an Accounting-Request without Acct-Session-Id", "client", client.Name)
			return nil
		}
		err = s.Accounting.UpsertAcct(ctx, a)
	case rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
		err = s.Accounting.StopAllAcct(ctx, client.Name, now, "NAS-Reboot")
	default:
		// Other status types (tunnel accounting, failed) are acknowledged
		// and not recorded.
	}
	if err != nil {
		// Never acknowledge what was not recorded: the NAS will resend.
		s.dedup.finish(key, nil, now)
		s.Logger.Error("could not record accounting; not acknowledged, the NAS will retry", "client", client.Name, "err", err)
		return nil
	}
	if s.Metrics != nil {
		label := "other" // a NAS must not be able to mint label values
		switch status {
		case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctStatusType_Value_InterimUpdate,
			rfc2866.AcctStatusType_Value_AccountingOn, rfc2866.AcctStatusType_Value_AccountingOff:
			label = status.String()
		}
		s.Metrics.Accounting.WithLabelValues(label).Inc()
	}
	resp := pkt.Response(radius.CodeAccountingResponse)
	copyProxyState(resp, pkt)
	reply, err := resp.Encode()
	if err != nil {
		s.dedup.finish(key, nil, now)
		return nil
	}
	s.dedup.finish(key, reply, now)
	return reply
}
