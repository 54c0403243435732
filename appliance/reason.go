package appliance

// Reason is the stable machine code of a decision's outcome. Audit entries,
// metrics labels, logs and tests all use these strings; never rename one.
type Reason string

// The one list of reasons.
const (
	ReasonOK               Reason = "ok"
	ReasonMFAChallenge     Reason = "mfa_challenge"    // a code was asked for
	ReasonBadRequest       Reason = "bad_request"      // the request itself is malformed
	ReasonBadUserName      Reason = "bad_user_name"    // empty, too long, not UTF-8, control characters
	ReasonUnsupportedAuth  Reason = "auth_unsupported" // CHAP, MS-CHAP; EAP when the door runs no EAP server
	ReasonUnknownUser      Reason = "unknown_user"
	ReasonBadPassword      Reason = "bad_password"
	ReasonLockedOut        Reason = "locked_out"
	ReasonDisabled         Reason = "account_disabled"
	ReasonExpired          Reason = "account_expired"
	ReasonOutsideHours     Reason = "outside_hours"
	ReasonGroupNotAllowed  Reason = "group_not_allowed"
	ReasonDeviceMissing    Reason = "device_missing" // no usable Calling-Station-Id
	ReasonDeviceUnknown    Reason = "device_unknown" // not registered to this user
	ReasonMFANotEnrolled   Reason = "mfa_not_enrolled"
	ReasonMFARequired      Reason = "mfa_required" // append-only client, no code given
	ReasonMFABadCode       Reason = "mfa_bad_code"
	ReasonMFAReplay        Reason = "mfa_replay"
	ReasonChallengeInvalid Reason = "challenge_invalid" // unknown State, or another user's or client's
	ReasonChallengeExpired Reason = "challenge_expired"
	ReasonChallengeFull    Reason = "challenge_table_full"
	ReasonUpstreamDown     Reason = "upstream_unreachable"
	ReasonUpstreamRefused  Reason = "upstream_refused" // for a reason other than the password; see the steps
	ReasonPasswordExpired  Reason = "password_expired"
	ReasonMustChange       Reason = "password_must_change"
	ReasonInternal         Reason = "internal_error" // the appliance could not decide; fail closed

	// 802.1X and MS-CHAPv2.
	ReasonMethodNotAllowed Reason = "method_not_allowed" // an EAP method or MS-CHAPv2 this client does not allow
	ReasonNTHashMissing    Reason = "nt_hash_missing"    // MS-CHAPv2 with no kept NT hash and no upstream that checks it
	ReasonMFAUnavailable   Reason = "mfa_unavailable"    // a code is required, and the method cannot carry one
	ReasonIdentityMismatch Reason = "identity_mismatch"  // the inner identity is not the outer one, and the policy says match
	ReasonCertUntrusted    Reason = "cert_untrusted"     // no chain to a trust anchor, or a certificate not for client auth
	ReasonCertExpired      Reason = "cert_expired"       // expired or not yet valid
	ReasonCertRevoked      Reason = "cert_revoked"       // on a CRL or the appliance's revocation list

	// Device posture (docs/posture.md).
	ReasonDeviceNoncompliant Reason = "device_noncompliant" // its MDM (or an override) says noncompliant, or unknown where compliant is required
	ReasonDeviceStale        Reason = "device_stale"        // its MDM's data is older than the client's grace period
	ReasonDeviceNotUsers     Reason = "device_not_users"    // the device, or the session at the bind's address, is another user's

	// The LDAP door's refusals.
	ReasonAnonymousBind   Reason = "anonymous_bind"       // no name and no password
	ReasonUnauthenticated Reason = "unauthenticated_bind" // a name with an empty password (RFC 4513 §5.1.2)
	ReasonSASLUnsupported Reason = "sasl_unsupported"
	ReasonTLSRequired     Reason = "tls_required" // a bind over plain LDAP where the policy wants TLS
	ReasonOutsideBase     Reason = "outside_base" // a bind DN or search base outside the directory
	ReasonNotAllowedNet   Reason = "network_not_allowed"
	ReasonWriteRefused    Reason = "write_refused" // add, modify, delete, modify DN, compare
	ReasonNotBound        Reason = "not_bound"     // a search before a bind account's bind

	// Push MFA (Duo, Okta Verify; docs/upstreams/duo.md).
	ReasonMFAPushDenied    Reason = "mfa_push_denied"          // the user denied the push
	ReasonMFAPushFraud     Reason = "mfa_push_fraud"           // the user reported the push as fraud; the account is locked
	ReasonMFAPushTimeout   Reason = "mfa_push_timeout"         // the push was not answered within its life
	ReasonMFAPushBudget    Reason = "mfa_push_budget_spent"    // not answered before the NAS would give up (mode hold)
	ReasonMFAProviderDeny  Reason = "mfa_provider_deny"        // preauth: the provider refuses this user
	ReasonMFAProviderDown  Reason = "mfa_provider_unreachable" // the provider could not be reached, and the client does not fall back
	ReasonMFAProviderError Reason = "mfa_provider_error"       // the provider refused our credentials, or answered outside its contract
)

// Reasons lists every reason, for metrics and documentation.
var Reasons = []Reason{
	ReasonOK, ReasonMFAChallenge, ReasonBadRequest, ReasonBadUserName, ReasonUnsupportedAuth,
	ReasonUnknownUser, ReasonBadPassword, ReasonLockedOut, ReasonDisabled, ReasonExpired,
	ReasonOutsideHours, ReasonGroupNotAllowed, ReasonDeviceMissing, ReasonDeviceUnknown,
	ReasonMFANotEnrolled, ReasonMFARequired, ReasonMFABadCode, ReasonMFAReplay,
	ReasonChallengeInvalid, ReasonChallengeExpired, ReasonChallengeFull, ReasonUpstreamDown,
	ReasonUpstreamRefused, ReasonPasswordExpired, ReasonMustChange, ReasonInternal,
	ReasonMethodNotAllowed, ReasonNTHashMissing, ReasonMFAUnavailable, ReasonIdentityMismatch,
	ReasonCertUntrusted, ReasonCertExpired, ReasonCertRevoked,
	ReasonDeviceNoncompliant, ReasonDeviceStale, ReasonDeviceNotUsers,
	ReasonAnonymousBind, ReasonUnauthenticated, ReasonSASLUnsupported, ReasonTLSRequired,
	ReasonOutsideBase, ReasonNotAllowedNet, ReasonWriteRefused, ReasonNotBound,
	ReasonMFAPushDenied, ReasonMFAPushFraud, ReasonMFAPushTimeout, ReasonMFAPushBudget,
	ReasonMFAProviderDeny, ReasonMFAProviderDown, ReasonMFAProviderError,
}

// Messages shown to the person logging in. Before the password has been
// verified every refusal reads the same, so nobody learns whether an account
// exists; after it, the person may learn why.
const (
	MsgDenied       = "Access denied."
	MsgEnterCode    = "Enter the 6-digit code from your authenticator app."
	MsgAppendCode   = "A verification code is required: enter your password followed by a comma and the 6-digit code."
	MsgDisabled     = "Your account is disabled. Contact your administrator."
	MsgExpired      = "Your account has expired. Contact your administrator."
	MsgOutsideHours = "Access is not allowed at this time."
	MsgNotAllowed   = "Your account may not use this network."
	MsgDevice       = "This device is not registered for your account."
	MsgDeviceHealth = "This device does not meet the clinic's security requirements. Contact your administrator."
	MsgNotEnrolled  = "Two-step verification is required but not set up for your account. Contact your administrator."
	MsgBadCode      = "The verification code was not accepted."
	MsgBusy         = "The service is busy. Try again in a moment."
	MsgPwExpired    = "Your password has expired. Change it, then try again."
	MsgLocked       = "Your account is locked. Contact your administrator."
)
