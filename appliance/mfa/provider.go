package mfa

import (
	"context"
	"errors"
	"time"
)

// Provider is a second factor kept by a cloud service (Duo, Okta Verify):
// the service knows the user's phone, sends the push and tells how it
// ended. The gate asks it four things; it keeps no state of its own
// between calls, so one Provider serves every login at once.
//
// A Provider never decides a login: it reports what the service said,
// and the gate's policy (fail mode, lockout on fraud) decides.
type Provider interface {
	// Preauth asks whether user may authenticate and how.
	Preauth(ctx context.Context, user string, ip string) (Preauth, error)
	// StartPush sends one push to user's phone and returns at once; the
	// push is then followed with Poll.
	StartPush(ctx context.Context, user string, info PushInfo) (Push, error)
	// Poll reports a push's state. It may wait for a change (Duo's
	// auth_status long-polls), at most until ctx ends.
	Poll(ctx context.Context, p Push) (PushResult, error)
	// VerifyPasscode checks a code the user typed instead of approving
	// (a Duo passcode, an Okta Verify TOTP): Approved or Denied.
	VerifyPasscode(ctx context.Context, user, code string) (PushResult, error)
}

// Preauth results, as Duo's preauth names them (Okta's are mapped onto
// them): the gate maps each to a stable reason.
type PreauthResult string

const (
	PreauthAuth   PreauthResult = "auth"   // a second factor is needed; a push can be sent
	PreauthAllow  PreauthResult = "allow"  // the service lets this user in without one (a bypass user)
	PreauthDeny   PreauthResult = "deny"   // the service refuses this user (locked out, not allowed)
	PreauthEnroll PreauthResult = "enroll" // the user has no device to push to
)

// Preauth is a provider's answer about one user.
type Preauth struct {
	Result PreauthResult
	// Push: the user has a device that takes pushes; Passcode: one that
	// makes codes.
	Push, Passcode bool
	// Device names the device a push goes to, for the decision's story.
	Device string
	// Message is the service's own explanation, for the audit only.
	Message string
}

// PushInfo is what the phone shows the user with a push.
type PushInfo struct {
	IP     string // where the login comes from
	Client string // the NAS's name at the appliance ("VPN")
}

// Push is one push sent: the service's transaction and how to follow it.
type Push struct {
	// ID is the service's transaction (Duo's txid, Okta's transaction
	// id); Poll is where to ask about it (Okta's poll link).
	ID, Poll string
	// Number is what the user must match on the phone (Okta's number
	// challenge, Duo's verified push), "" when none.
	Number string
	Device string
	Sent   time.Time
}

// Status is where a push stands.
type Status string

const (
	StatusWaiting  Status = "waiting"
	StatusApproved Status = "approved"
	StatusDenied   Status = "denied"
	StatusFraud    Status = "fraud"   // the user pressed "I did not ask for this"
	StatusTimeout  Status = "timeout" // the service gave up waiting for the user
)

// Done reports a final status.
func (s Status) Done() bool { return s != StatusWaiting && s != "" }

// PushResult is a push's (or a passcode's) state as the service told it.
type PushResult struct {
	Status Status
	// Number may appear only once the push is on the phone (Duo gives
	// the verified-push code in auth_status).
	Number string
	// Detail is the service's own words, for the audit only.
	Detail string
}

// Errors a provider returns, so the gate can apply the client's fail
// mode: only ErrUnreachable may fall back to TOTP; the others reject.
var (
	// ErrUnreachable: no answer, a timeout, a 5xx or a 429 after retries.
	ErrUnreachable = errors.New("mfa provider unreachable")
	// ErrRefused: the service refused the appliance's credentials or
	// request (a wrong integration key, secret key, API token, host).
	ErrRefused = errors.New("mfa provider refused the request")
	// ErrBadResponse: an answer that does not follow the service's
	// contract (malformed JSON, an unknown result, an untrusted TLS
	// certificate). Never trusted, never a fallback.
	ErrBadResponse = errors.New("mfa provider answered outside its contract")
	// ErrUnknownUser: the service has no such user.
	ErrUnknownUser = errors.New("mfa provider does not know the user")
)
