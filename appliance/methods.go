package appliance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// methodName names the methods that are not plain PAP or an LDAP bind,
// for the decision's story.
var methodName = map[Method]string{
	MethodTTLSPAP:  "EAP-TTLS with PAP inside",
	MethodPEAP:     "PEAP with EAP-MSCHAPv2",
	MethodEAPTLS:   "EAP-TLS (client certificate)",
	MethodMSCHAPv2: "MS-CHAPv2 (no EAP)",
}

// methodRefusal says why client c's policy does not allow method m, in
// the contractor's words with the switch that would allow it; "" when it
// is allowed.
func methodRefusal(c store.Client, m Method) string {
	pol := c.Policy
	var eap string
	switch m {
	case MethodMSCHAPv2, MethodPEAP:
		if !pol.AllowMSCHAP {
			return fmt.Sprintf("MS-CHAPv2 is off for client %s; 'clinicgate client set %s --allow-mschap' turns it on (the appliance then keeps NT hashes, see docs/mschap.md)", c.Name, c.Name)
		}
		if m == MethodPEAP {
			eap = policy.EAPPEAP
		}
	case MethodEAPTLS:
		eap = policy.EAPTLS
	case MethodTTLSPAP:
		eap = policy.EAPTTLS
	}
	if eap == "" || slices.Contains(pol.EAPAllowed(), eap) {
		return ""
	}
	with := append(slices.Clone(pol.EAPAllowed()), eap)
	return fmt.Sprintf("EAP method %s is not among client %s's EAP methods (%s); 'clinicgate client set %s --eap %s' allows it",
		eap, c.Name, strings.Join(pol.EAPAllowed(), ","), c.Name, strings.Join(with, ","))
}

// anonymous reports an EAP outer identity that hides the user's name:
// "anonymous", optionally with a realm ("anonymous@clinic.example").
func anonymous(outer string) bool {
	name, _, _ := strings.Cut(outer, "@")
	return strings.EqualFold(name, "anonymous")
}

// stripDomain drops a Windows DOMAIN\ prefix (RFC 2759 §8.2: the name
// hashed into an MS-CHAPv2 response is the user name without it). It cuts
// at the first backslash, as wpa_supplicant and hostapd do when they hash,
// and as the EAP server does for PEAP's inner name.
func stripDomain(name string) string {
	if i := strings.IndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}
