package ldapproxy

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/ldapproxy/ldapmsg"
)

// Diagnostic texts: fixed, safe strings (the detail goes to the audit).
const (
	diagDenied      = appliance.MsgDenied
	diagUnauth      = "A bind needs a password (unauthenticated binds are refused)."
	diagSASL        = "SASL binds are not supported; use a simple bind over TLS."
	diagTLSRequired = "TLS is required: use LDAPS or StartTLS before binding."
	diagBindFirst   = "Bind first."
	diagReadOnly    = "This directory is read-only."
	diagNoSuchBase  = "No such object."
	diagUnavailable = "The directory is unavailable; try again."
	diagTooComplex  = "The filter is too complex."
	diagNoTLS       = "StartTLS is not available."
	diagUnsupported = "Operation not supported."
)

type bindKind int

const (
	boundNone bindKind = iota
	boundService
	boundUser
)

// connState is one connection's authentication. A connection's requests
// are handled concurrently, hence the lock.
type connState struct {
	mu   sync.Mutex
	kind bindKind
	name string
}

func (c *connState) get() (bindKind, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kind, c.name
}

func (c *connState) set(k bindKind, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kind, c.name = k, name
}

// handler answers the requests of every connection of one server.
type handler struct {
	s *Server
}

// serve routes one request to its handler.
func (h *handler) serve(c *conn, r *ldapmsg.Request) {
	switch r.Op {
	case ldap.ApplicationBindRequest:
		h.bind(c, r)
	case ldap.ApplicationSearchRequest:
		h.search(c, r)
	case ldap.ApplicationExtendedRequest:
		switch r.Extended.Name {
		case ldapmsg.OIDWhoAmI:
			h.whoAmI(c, r)
		default:
			h.s.cfg.Metrics.op("extended", "unsupported")
			_ = c.writeExtended(r.ID, &ldapmsg.ExtendedResponse{Result: ldapmsg.Result{
				Code: ldap.LDAPResultProtocolError, Diagnostic: diagUnsupported}})
		}
	case ldap.ApplicationAddRequest, ldap.ApplicationModifyRequest, ldap.ApplicationDelRequest,
		ldap.ApplicationModifyDNRequest, ldap.ApplicationCompareRequest:
		// Each response tag is its request's plus one.
		h.refuseWrite(c, r, r.Op+1)
	default:
		_ = c.writeResult(r.ID, ldap.ApplicationExtendedResponse, &ldapmsg.Result{
			Code: ldap.LDAPResultUnwillingToPerform, Diagnostic: diagUnsupported})
	}
}

// request starts an appliance.Request for an operation on conn: the
// client whose range holds the connection's source address (looked up
// here, once per operation), and whether TLS protects it. false: the
// address is no longer a client's (removed since the connection opened).
func (h *handler) request(ctx context.Context, conn *conn) (appliance.Request, bool) {
	src := conn.src
	c, ok, err := h.s.cfg.Clients.Lookup(ctx, src)
	if err != nil || !ok {
		return appliance.Request{}, false
	}
	// The device is the address the bind came from (an EHR server or a
	// workstation); a client that requires registered MAC addresses
	// refuses LDAP binds, which carry none.
	return appliance.Request{
		Door: appliance.DoorLDAP, Client: c, Source: src, Method: appliance.MethodLDAPBind,
		Plaintext: !conn.tls, Device: src.String(),
	}, true
}

// refuse audits a refused operation (the client is known: unknown ones
// never get this far).
func (h *handler) refuse(ctx context.Context, c *conn, user string, reason appliance.Reason, note string) {
	req, ok := h.request(ctx, c)
	if !ok {
		return
	}
	req.User, req.Invalid, req.Plaintext = user, reason, false
	if note != "" {
		req.Notes = []string{note}
	}
	_, _ = h.s.cfg.Gate.Decide(ctx, req)
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// bind hands the name as sent (a DN, user@domain, DOMAIN\user or a plain
// name) and the password to the gate, which resolves the name and decides;
// the door only refuses what it can tell from the message alone
// (anonymous, unauthenticated and SASL binds) and sets the connection's
// state from the decision.
func (h *handler) bind(c *conn, r *ldapmsg.Request) {
	resp := ldapmsg.Result{Code: ldap.LDAPResultInvalidCredentials, Diagnostic: diagDenied}
	defer func() { _ = c.writeResult(r.ID, ldap.ApplicationBindResponse, &resp) }()
	st := &c.state
	// RFC 4511 §4.2.1: a bind, even a failed one, ends the previous
	// authentication.
	st.set(boundNone, "")
	ctx, cancel := opContext()
	defer cancel()
	m := r.Bind
	req, ok := h.request(ctx, c)
	if !ok {
		resp.Code = ldap.LDAPResultUnwillingToPerform
		return
	}
	raw, pw := m.Name, m.Password
	req.User = raw
	code, diag := ldap.LDAPResultInvalidCredentials, diagDenied
	switch {
	case m.SASL:
		req.Invalid, code, diag = appliance.ReasonSASLUnsupported, ldap.LDAPResultAuthMethodNotSupported, diagSASL
		req.Notes = []string{"sasl mechanism " + m.SASLMechanism}
	case raw == "" && pw == "":
		// As Active Directory does: an anonymous bind succeeds and
		// grants nothing an unbound connection lacks, the root DSE
		// alone (search.go); some EHR set-up wizards bind anonymously
		// before they read it. Nobody is authenticated, so the gate is
		// not asked and the connection's authentication deadline
		// stands; a search past the root DSE is refused as not_bound.
		h.s.cfg.Metrics.op("bind", "anonymous")
		resp.Code, resp.Diagnostic = ldap.LDAPResultSuccess, ""
		return
	case pw == "":
		// RFC 4513 §5.1.2: a name without a password is an
		// "unauthenticated" bind that many servers treat as anonymous
		// success, a classic way past an EHR's login check.
		req.Invalid, code, diag = appliance.ReasonUnauthenticated, ldap.LDAPResultUnwillingToPerform, diagUnauth
	}
	if req.Invalid != "" {
		req.Plaintext = false
		h.s.cfg.Metrics.op("bind", string(req.Invalid))
		_, _ = h.s.cfg.Gate.Decide(ctx, req)
		resp.Code, resp.Diagnostic = code, diag
		return
	}
	req.Password = secrets.Secret(pw)
	d, err := h.s.cfg.Gate.Decide(ctx, req)
	h.s.cfg.Metrics.op("bind", string(d.Reason))
	switch {
	case err != nil:
		resp.Code, resp.Diagnostic = ldap.LDAPResultUnavailable, diagUnavailable
	case d.Outcome == appliance.Accept:
		kind := boundUser
		if d.BindAccount {
			kind = boundService
		}
		st.set(kind, d.User)
		c.bound()
		resp.Code, resp.Diagnostic = ldap.LDAPResultSuccess, ""
	case d.Reason == appliance.ReasonTLSRequired:
		resp.Code, resp.Diagnostic = ldap.LDAPResultConfidentialityRequired, diagTLSRequired
	case d.Reason == appliance.ReasonUpstreamDown:
		resp.Code, resp.Diagnostic = ldap.LDAPResultUnavailable, diagUnavailable
	default:
		// The gate's message is one of its fixed texts, and before the
		// password is verified always "Access denied.".
		resp.Diagnostic = d.Message
	}
}

// refuseWrite answers an add, modify, delete, modify DN or compare with
// insufficientAccessRights, in the response type that matches the request.
func (h *handler) refuseWrite(c *conn, r *ldapmsg.Request, respTag int) {
	resp := ldapmsg.Result{Code: ldap.LDAPResultInsufficientAccessRights, Diagnostic: diagReadOnly}
	defer func() { _ = c.writeResult(r.ID, respTag, &resp) }()
	ctx, cancel := opContext()
	defer cancel()
	_, name := c.state.get()
	h.s.cfg.Metrics.op("write", string(appliance.ReasonWriteRefused))
	h.refuse(ctx, c, name, appliance.ReasonWriteRefused, "operation "+opName(r.Op))
}

func opName(tag int) string {
	if n, ok := ldap.ApplicationMap[uint8(tag)]; ok {
		return strings.ToLower(n)
	}
	return "unknown"
}

// startTLS answers a StartTLS request and, on success, runs the TLS
// handshake before the next request is read (the read loop calls it with
// no other request in progress). An error means the connection is no
// longer usable.
func (h *handler) startTLS(c *conn, r *ldapmsg.Request) error {
	resp := ldapmsg.ExtendedResponse{Result: ldapmsg.Result{Code: ldap.LDAPResultUnavailable}, Name: ldapmsg.OIDStartTLS}
	switch {
	case h.s.cfg.TLS == nil:
		resp.Diagnostic = diagNoTLS
		return c.writeExtended(r.ID, &resp)
	case c.tls:
		resp.Code, resp.Diagnostic = ldap.LDAPResultOperationsError, "TLS is already established."
		return c.writeExtended(r.ID, &resp)
	}
	resp.Code = ldap.LDAPResultSuccess
	if err := c.writeExtended(r.ID, &resp); err != nil {
		return err
	}
	if err := c.upgradeTLS(h.s.cfg.TLS); err != nil {
		h.s.log.Debug("StartTLS handshake failed", "source", c.src.String(), "err", err)
		h.s.cfg.Metrics.op("starttls", "handshake_failed")
		return err
	}
	h.s.cfg.Metrics.op("starttls", "ok")
	return nil
}

func (h *handler) whoAmI(c *conn, r *ldapmsg.Request) {
	resp := ldapmsg.ExtendedResponse{Result: ldapmsg.Result{Code: ldap.LDAPResultSuccess}}
	kind, name := c.state.get()
	id := ""
	if kind != boundNone {
		id = "u:" + name
	}
	resp.Value = []byte(id)
	_ = c.writeExtended(r.ID, &resp)
}

// isRootDSE: a base search of the empty DN, which clients send before
// binding to learn what the server offers.
func isRootDSE(m *ldapmsg.SearchRequest) bool {
	return m.BaseDN == "" && m.Scope == ldap.ScopeBaseObject
}
