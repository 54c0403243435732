package eap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/clinicgate/clinicgate/appliance"
)

// PEAPv0 (draft-kamath-pppext-peapv0, MS-PEAP) with EAP-MSCHAPv2
// (draft-kamath-pppext-eap-mschapv2) inside. In the tunnel, EAP packets
// travel without their 4-byte header (the outer one stands for it), except
// the Extensions packets (type 33) that carry the Result TLV, which keep
// theirs. No crypto-binding TLV is sent: it is optional for the peers
// (wpa_supplicant's default, Windows'), and the MSK is then the tunnel's.

// MS-CHAPv2 opcodes (draft-kamath-pppext-eap-mschapv2 §2).
const (
	msChallenge = 1
	msResponse  = 2
	msSuccess   = 3
	msFailure   = 4
)

// The Result TLV (MS-PEAP §2.2.8.1): mandatory, type 3, two bytes.
const (
	tlvResult        = 3
	tlvMandatory     = 0x8000
	tlvResultSuccess = 1
	tlvResultFailure = 2
)

// peapStart sends the inner EAP-Request/Identity, after what TLS still
// had to send.
func (s *Server) peapStart(ctx context.Context, r Request, sess *session, id byte, pending []byte) Reply {
	sess.phase = phaseIdentity
	return s.peapWrite(ctx, r, sess, id, pending, []byte{TypeIdentity})
}

func (s *Server) peapWrite(ctx context.Context, r Request, sess *session, id byte, pending, inner []byte) Reply {
	rep, err := sess.write(id, pending, inner)
	if err != nil {
		return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "TLS: "+err.Error())
	}
	return rep
}

// peapStep runs the inner method on what the peer sent in the tunnel.
func (s *Server) peapStep(ctx context.Context, r Request, sess *session, id byte, out []byte, app [][]byte) Reply {
	if sess.phase == phaseWaitAck {
		if len(app) != 0 {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: data from the peer before the inner method")
		}
		return s.peapStart(ctx, r, sess, id, out)
	}
	if len(app) == 0 {
		// TLS had something to say, or nothing: the inner answer is to come.
		return sess.send(id, out)
	}
	if len(app) != 1 {
		return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, fmt.Sprintf("PEAP: %d inner packets in one message", len(app)))
	}
	in := app[0]
	switch sess.phase {
	case phaseIdentity:
		if len(in) < 1 || in[0] != TypeIdentity {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: the inner answer is no identity")
		}
		name := string(in[1:])
		if name == "" || len(name) > appliance.MaxUserName {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, fmt.Sprintf("PEAP: an inner identity of %d bytes", len(name)))
		}
		sess.inner = name
		if _, err := rand.Read(sess.chal[:]); err != nil {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonInternal, err.Error())
		}
		sess.msid = id + 1 // any byte; the next request's Identifier, as hostapd does
		sess.phase = phaseChallenge
		return s.peapWrite(ctx, r, sess, id, out, msChallengePacket(sess.msid, sess.chal, s.ServerName))
	case phaseChallenge:
		resp, err := parseMSResponse(in, sess.msid)
		if err != nil {
			if len(in) >= 1 && in[0] == TypeNAK {
				return s.refuseIn(ctx, r, sess, id, appliance.ReasonMethodNotAllowed, fmt.Sprintf("PEAP: the peer refused EAP-MSCHAPv2 inside and asked for %v", in[1:]))
			}
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: "+err.Error())
		}
		resp.AuthenticatorChallenge = sess.chal
		// DOMAIN\user: the user without the domain, cut at the first
		// backslash as MS-CHAPv2's own hashing does (RFC 2759 §8.2, and
		// hostapd and wpa_supplicant alike).
		user := sess.inner
		if _, u, ok := strings.Cut(user, "\\"); ok {
			user = u
		}
		req := s.gateRequest(r, sess, appliance.MethodPEAP, user)
		req.MSCHAP = &resp
		d, err := s.Gate.Decide(ctx, req)
		if err == nil && d.Outcome == appliance.Accept && (d.MSCHAP == nil || !validAuthResponse(d.MSCHAP.AuthenticatorResponse)) {
			// The peer checks the server's proof: without one, no
			// success can be shown it. Never an Accept.
			d.Outcome, d.Reason, d.Message = appliance.Reject, appliance.ReasonInternal, appliance.MsgDenied
		}
		if err != nil {
			d = appliance.Decision{Outcome: appliance.Reject, Reason: appliance.ReasonInternal, Message: appliance.MsgDenied}
		}
		if d.Outcome != appliance.Accept {
			d.Outcome = appliance.Reject
			sess.decision, sess.phase = d, phaseMSFailure
			return s.peapWrite(ctx, r, sess, id, out, msFailurePacket(sess.msid, sess.chal))
		}
		sess.decision, sess.phase = d, phaseMSSuccess
		return s.peapWrite(ctx, r, sess, id, out, msSuccessPacket(sess.msid, d.MSCHAP.AuthenticatorResponse))
	case phaseMSSuccess, phaseMSFailure:
		want := byte(msSuccess)
		if sess.phase == phaseMSFailure {
			want = msFailure
		}
		if len(in) != 2 || in[0] != TypeMSCHAPv2 || in[1] != want {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, fmt.Sprintf("PEAP: %x in answer to the MS-CHAPv2 result", in[:min(len(in), 8)]))
		}
		status, next := uint16(tlvResultSuccess), phaseResult
		if want == msFailure {
			status, next = tlvResultFailure, phaseResultFail
		}
		sess.phase = next
		return s.peapWrite(ctx, r, sess, id, out, resultTLV(CodeRequest, id+1, status))
	case phaseResult, phaseResultFail:
		status, err := parseResultTLV(in)
		if err != nil {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: "+err.Error())
		}
		// The MS-CHAPv2 result was spent inside the tunnel (the peer has
		// its proof; the MPPE keys are the tunnel's): the door must not
		// send it again as MS-CHAP attributes.
		d := sess.decision
		d.MSCHAP = nil
		if sess.phase == phaseResultFail {
			// The peer acknowledged the failure: the gate's Reject ends it.
			return s.end(sess, id, d, nil)
		}
		if status != tlvResultSuccess {
			// The gate accepted, the peer did not: it could not check
			// the server's proof or refused the tunnel. Audited as such.
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: the peer answered the Result TLV with failure")
		}
		return s.end(sess, id, d, nil)
	}
	return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "PEAP: data out of turn")
}

// msChallengePacket is the header-less EAP-MSCHAPv2 Challenge: opcode,
// MS-CHAPv2-ID, MS-Length, Value-Size 16, the challenge, the server name.
func msChallengePacket(msid byte, chal [16]byte, name string) []byte {
	b := []byte{TypeMSCHAPv2, msChallenge, msid, 0, 0, 16}
	b = append(b, chal[:]...)
	b = append(b, name...)
	binary.BigEndian.PutUint16(b[3:5], uint16(len(b)-1))
	return b
}

func msSuccessPacket(msid byte, authResponse string) []byte {
	b := []byte{TypeMSCHAPv2, msSuccess, msid, 0, 0}
	b = append(b, authResponse+" M=Authentication succeeded"...)
	binary.BigEndian.PutUint16(b[3:5], uint16(len(b)-1))
	return b
}

// msFailurePacket says E=691 (authentication failure), no retry, and
// offers a new challenge only as the format asks (RFC 2759 §6).
func msFailurePacket(msid byte, chal [16]byte) []byte {
	b := []byte{TypeMSCHAPv2, msFailure, msid, 0, 0}
	b = append(b, "E=691 R=0 C="+strings.ToUpper(hex.EncodeToString(chal[:]))+" V=3 M=Authentication failed"...)
	binary.BigEndian.PutUint16(b[3:5], uint16(len(b)-1))
	return b
}

// parseMSResponse reads a header-less EAP-MSCHAPv2 Response: opcode 2,
// the MS-CHAPv2-ID of the challenge, MS-Length, Value-Size 49, the peer
// challenge, 8 reserved bytes, the NT-Response, a flags byte, the name.
func parseMSResponse(b []byte, msid byte) (appliance.MSCHAPv2, error) {
	var r appliance.MSCHAPv2
	switch {
	case len(b) < 1 || b[0] != TypeMSCHAPv2:
		return r, errors.New("the inner answer is no EAP-MSCHAPv2")
	case len(b) < 6+49:
		return r, fmt.Errorf("an MS-CHAPv2 response of %d bytes", len(b))
	case b[1] != msResponse:
		return r, fmt.Errorf("MS-CHAPv2 opcode %d where a response is due", b[1])
	case b[2] != msid:
		return r, fmt.Errorf("MS-CHAPv2-ID %d, want %d", b[2], msid)
	case int(binary.BigEndian.Uint16(b[3:5])) != len(b)-1:
		return r, fmt.Errorf("MS-Length %d in %d bytes", binary.BigEndian.Uint16(b[3:5]), len(b)-1)
	case b[5] != 49:
		return r, fmt.Errorf("Value-Size %d, want 49", b[5])
	}
	v := b[6 : 6+49]
	copy(r.PeerChallenge[:], v[0:16])
	copy(r.NTResponse[:], v[24:48])
	r.Ident = msid
	r.Name = string(b[6+49:])
	if r.Name == "" || len(r.Name) > appliance.MaxUserName {
		return r, fmt.Errorf("an MS-CHAPv2 name of %d bytes", len(r.Name))
	}
	return r, nil
}

// resultTLV is an Extensions packet with its EAP header and one Result TLV.
func resultTLV(code, id byte, status uint16) []byte {
	b := []byte{code, id, 0, 11, TypeExtensions, 0, 0, 0, 2, 0, 0}
	binary.BigEndian.PutUint16(b[5:7], tlvMandatory|tlvResult)
	binary.BigEndian.PutUint16(b[9:11], status)
	return b
}

// parseResultTLV reads the peer's Extensions response and its Result TLV;
// other optional TLVs are skipped, a mandatory one clinicgate does not know
// is refused.
func parseResultTLV(b []byte) (uint16, error) {
	p, err := Parse(b)
	if err != nil {
		return 0, fmt.Errorf("the answer to the Result TLV: %w", err)
	}
	if p.Code != CodeResponse || p.Type != TypeExtensions {
		return 0, fmt.Errorf("EAP code %d type %d in answer to the Result TLV", p.Code, p.Type)
	}
	var status uint16
	found := 0
	for d := p.Data; len(d) > 0; {
		if len(d) < 4 {
			return 0, errors.New("a truncated TLV")
		}
		typ, n := binary.BigEndian.Uint16(d[0:2]), int(binary.BigEndian.Uint16(d[2:4]))
		if 4+n > len(d) {
			return 0, fmt.Errorf("a TLV of %d bytes in %d", n, len(d)-4)
		}
		switch {
		case typ&0x3fff == tlvResult:
			if n != 2 {
				return 0, fmt.Errorf("a Result TLV of %d bytes", n)
			}
			status, found = binary.BigEndian.Uint16(d[4:6]), found+1
		case typ&tlvMandatory != 0:
			return 0, fmt.Errorf("a mandatory TLV %d clinicgate does not support", typ&0x3fff)
		}
		d = d[4+n:]
	}
	if found != 1 || (status != tlvResultSuccess && status != tlvResultFailure) {
		return 0, fmt.Errorf("%d Result TLVs, status %d", found, status)
	}
	return status, nil
}

// validAuthResponse: "S=" and 40 hex digits (RFC 2759 §8.7).
func validAuthResponse(s string) bool {
	h, ok := strings.CutPrefix(s, "S=")
	if !ok || len(h) != 40 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
