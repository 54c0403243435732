package ldapproxy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// Diagnostic texts: fixed, safe strings (the detail goes to the audit).
const (
	diagDenied      = appliance.MsgDenied
	diagAnonymous   = "Anonymous binds are not allowed."
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

// connState is one connection's authentication. gldap handles a
// connection's requests concurrently, hence the lock.
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

// handler serves one listener's connections.
type handler struct {
	s     *Server
	mu    sync.Mutex
	conns map[int]*connState
}

func (h *handler) state(id int) *connState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.conns[id]
	if st == nil {
		st = &connState{}
		h.conns[id] = st
	}
	return st
}

func (h *handler) closed(id int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, id)
}

func (h *handler) mux() (*gldap.Mux, error) {
	m, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	for _, add := range []func() error{
		func() error { return m.Bind(h.bind) },
		func() error { return m.Search(h.search) },
		func() error { return m.ExtendedOperation(h.startTLS, gldap.ExtendedOperationStartTLS) },
		func() error { return m.ExtendedOperation(h.whoAmI, gldap.ExtendedOperationWhoAmI) },
		func() error { return m.Add(h.write) },
		func() error { return m.Modify(h.write) },
		func() error { return m.Delete(h.write) },
		func() error { return m.DefaultRoute(h.other) },
	} {
		if err := add(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// request starts an appliance.Request for r: the client whose range holds
// the connection's source address, and whether TLS protects it.
func (h *handler) request(ctx context.Context, r *gldap.Request) (appliance.Request, bool) {
	src := sourceOf(r.RemoteAddr())
	c, ok, err := h.s.cfg.Clients.Lookup(ctx, src)
	if err != nil || !ok {
		return appliance.Request{}, false
	}
	// The device is the address the bind came from (an EHR server or a
	// workstation); a client that requires registered MAC addresses
	// refuses LDAP binds, which carry none.
	return appliance.Request{
		Door: appliance.DoorLDAP, Client: c, Source: src, Method: appliance.MethodLDAPBind,
		Plaintext: !r.TLS(), Device: src.String(),
	}, true
}

// refuse audits a refused operation (the client is known: unknown ones
// never get this far).
func (h *handler) refuse(ctx context.Context, r *gldap.Request, user string, reason appliance.Reason, note string) {
	req, ok := h.request(ctx, r)
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

func (h *handler) bind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	resp.SetDiagnosticMessage(diagDenied)
	defer func() { _ = w.Write(resp) }()
	st := h.state(r.ConnectionID())
	// RFC 4511 §4.2.1: a bind, even a failed one, ends the previous
	// authentication.
	st.set(boundNone, "")
	ctx, cancel := opContext()
	defer cancel()
	m, err := r.GetSimpleBindMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		resp.SetDiagnosticMessage(diagUnsupported)
		return
	}
	req, ok := h.request(ctx, r)
	if !ok {
		resp.SetResultCode(gldap.ResultUnwillingToPerform)
		return
	}
	raw, pw := m.UserName, string(m.Password)
	req.User = raw
	code, diag := gldap.ResultInvalidCredentials, diagDenied
	switch {
	case m.AuthChoice != gldap.SimpleAuthChoice:
		req.Invalid, code, diag = appliance.ReasonSASLUnsupported, gldap.ResultAuthMethodNotSupported, diagSASL
		req.Notes = []string{"sasl mechanism " + m.SASLMechanism()}
	case raw == "" && pw == "":
		req.Invalid, code, diag = appliance.ReasonAnonymousBind, gldap.ResultInappropriateAuthentication, diagAnonymous
	case pw == "":
		// RFC 4513 §5.1.2: a name without a password is an
		// "unauthenticated" bind that many servers treat as anonymous
		// success, a classic way past an EHR's login check.
		req.Invalid, code, diag = appliance.ReasonUnauthenticated, gldap.ResultUnwillingToPerform, diagUnauth
	}
	if req.Invalid != "" {
		req.Plaintext = false
		h.s.cfg.Metrics.op("bind", string(req.Invalid))
		_, _ = h.s.cfg.Gate.Decide(ctx, req)
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
		return
	}
	site, err := h.s.dir.site(ctx)
	if err != nil {
		resp.SetResultCode(gldap.ResultUnavailable)
		resp.SetDiagnosticMessage(diagUnavailable)
		return
	}
	name, svc, reason := h.bindName(ctx, raw, site)
	req.Password = secrets.Secret(pw)
	var d appliance.Decision
	switch {
	case reason != "":
		req.Invalid = reason
		d, err = h.s.cfg.Gate.Decide(ctx, req)
	case svc:
		req.User = name
		d, err = h.s.cfg.Gate.BindService(ctx, req)
	default:
		req.User = name
		d, err = h.s.cfg.Gate.Decide(ctx, req)
	}
	h.s.cfg.Metrics.op("bind", string(d.Reason))
	switch {
	case err != nil:
		resp.SetResultCode(gldap.ResultUnavailable)
		resp.SetDiagnosticMessage(diagUnavailable)
	case d.Outcome == appliance.Accept:
		kind := boundUser
		if svc {
			kind = boundService
		}
		st.set(kind, d.User)
		resp.SetResultCode(gldap.ResultSuccess)
		resp.SetDiagnosticMessage("")
	case d.Reason == appliance.ReasonTLSRequired:
		resp.SetResultCode(gldap.ResultConfidentialityRequired)
		resp.SetDiagnosticMessage(diagTLSRequired)
	case d.Reason == appliance.ReasonUpstreamDown:
		resp.SetResultCode(gldap.ResultUnavailable)
		resp.SetDiagnosticMessage(diagUnavailable)
	default:
		// The gate's message is one of its fixed texts, and before the
		// password is verified always "Access denied.".
		resp.SetDiagnosticMessage(d.Message)
	}
}

// bindName turns the three name forms AD accepts (a DN, user@domain,
// DOMAIN\user) into the name the gate knows, and says whether it names a
// bind account. A non-empty reason refuses the bind.
func (h *handler) bindName(ctx context.Context, raw string, site appliance.LDAPSite) (string, bool, appliance.Reason) {
	name := raw
	switch {
	case strings.Contains(raw, "="):
		dn, err := ldap.ParseDN(raw)
		if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) != 1 {
			return "", false, appliance.ReasonBadUserName
		}
		base, err := ldap.ParseDN(site.BaseDN)
		if err != nil || !base.AncestorOfFold(dn) {
			return "", false, appliance.ReasonOutsideBase
		}
		first := dn.RDNs[0].Attributes[0]
		if h.isBindAccount(ctx, first.Value) {
			return first.Value, true, ""
		}
		if site.Mode == "proxy" {
			d, err := h.proxyDirectory(ctx, site)
			if err != nil {
				return "", false, appliance.ReasonUpstreamDown
			}
			n, err := d.NameForDN(ctx, raw)
			switch {
			case errors.Is(err, upstream.ErrUnknownUser):
				return "", false, appliance.ReasonUnknownUser
			case err != nil:
				return "", false, appliance.ReasonUpstreamDown
			}
			return n, false, ""
		}
		switch strings.ToLower(first.Type) {
		case "cn", "uid", "samaccountname":
			name = first.Value
		default:
			return "", false, appliance.ReasonUnknownUser
		}
	case strings.Contains(raw, `\`):
		dom, user, _ := strings.Cut(raw, `\`)
		if !strings.EqualFold(dom, site.NetBIOS) {
			return "", false, appliance.ReasonOutsideBase
		}
		name = user
	case strings.Contains(raw, "@"):
		if u, ok := strings.CutSuffix(strings.ToLower(raw), "@"+strings.ToLower(site.Domain)); ok && u != "" {
			name = raw[:len(u)]
		}
	}
	if name == "" {
		return "", false, appliance.ReasonBadUserName
	}
	return name, h.isBindAccount(ctx, name), ""
}

func (h *handler) isBindAccount(ctx context.Context, name string) bool {
	_, err := h.s.cfg.Store.BindAccountByName(ctx, name)
	return err == nil
}

func (h *handler) proxyDirectory(ctx context.Context, site appliance.LDAPSite) (upstream.Directory, error) {
	if h.s.cfg.Directories == nil || site.ProxyUpstream == "" {
		return nil, errors.New("proxy mode has no upstream (set ldap_proxy_upstream)")
	}
	return h.s.cfg.Directories.Directory(ctx, site.ProxyUpstream)
}

func (h *handler) write(w *gldap.ResponseWriter, r *gldap.Request) {
	h.refuseWrite(w, r, r.ProtocolOp()+1)
}

// refuseWrite answers an add, modify, delete, modify DN or compare with
// insufficientAccessRights, in the response type that matches the request.
func (h *handler) refuseWrite(w *gldap.ResponseWriter, r *gldap.Request, respTag int) {
	resp := r.NewResponse(gldap.WithApplicationCode(respTag), gldap.WithResponseCode(gldap.ResultInsufficientAccessRights),
		gldap.WithDiagnosticMessage(diagReadOnly))
	defer func() { _ = w.Write(resp) }()
	ctx, cancel := opContext()
	defer cancel()
	_, name := h.state(r.ConnectionID()).get()
	h.s.cfg.Metrics.op("write", string(appliance.ReasonWriteRefused))
	h.refuse(ctx, r, name, appliance.ReasonWriteRefused, "operation "+opName(r.ProtocolOp()))
}

func opName(tag int) string {
	if n, ok := gldap.ApplicationCodeMap[uint8(tag)]; ok {
		return strings.ToLower(n)
	}
	return "unknown"
}

// other answers what no route took: compare and modify DN (refused as
// writes would be), SASL binds (which gldap routes here), and unknown
// extended operations.
func (h *handler) other(w *gldap.ResponseWriter, r *gldap.Request) {
	switch r.ProtocolOp() {
	case gldap.ApplicationBindRequest:
		h.bind(w, r)
	case gldap.ApplicationCompareRequest, gldap.ApplicationModifyDNRequest:
		h.refuseWrite(w, r, r.ProtocolOp()+1)
	case gldap.ApplicationExtendedRequest:
		h.s.cfg.Metrics.op("extended", "unsupported")
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultProtocolError))
		resp.SetDiagnosticMessage(diagUnsupported)
		_ = w.Write(resp)
	default:
		resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform), gldap.WithDiagnosticMessage(diagUnsupported))
		_ = w.Write(resp)
	}
}

func (h *handler) startTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultUnavailable))
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	switch {
	case h.s.cfg.TLS == nil:
		resp.SetDiagnosticMessage(diagNoTLS)
		_ = w.Write(resp)
		return
	case r.TLS():
		resp.SetResultCode(gldap.ResultOperationsError)
		resp.SetDiagnosticMessage("TLS is already established.")
		_ = w.Write(resp)
		return
	}
	resp.SetResultCode(gldap.ResultSuccess)
	if err := w.Write(resp); err != nil {
		return
	}
	if err := r.StartTLS(h.s.cfg.TLS); err != nil {
		h.s.log.Debug("StartTLS handshake failed", "source", sourceOf(r.RemoteAddr()).String(), "err", err)
	}
	h.s.cfg.Metrics.op("starttls", "ok")
}

func (h *handler) whoAmI(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	kind, name := h.state(r.ConnectionID()).get()
	id := ""
	if kind != boundNone {
		id = "u:" + name
	}
	resp.SetResponseValue(id)
	_ = w.Write(resp)
}

// isRootDSE: a base search of the empty DN, which clients send before
// binding to learn what the server offers.
func isRootDSE(m *gldap.SearchMessage) bool {
	return m.BaseDN == "" && m.Scope == gldap.BaseObject
}
