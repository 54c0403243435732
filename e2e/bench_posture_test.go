package e2e

// make bench: what a device-posture lookup adds to a decision with 10,000
// devices in the inventory. Measured at the gate with a cheap password
// hash, the harshest comparison: with the production argon2id hash (about
// 24 ms a login) the lookup is a far smaller share. Reported, not asserted.

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

const postureDevices = 10000

func BenchmarkPostureLookup(b *testing.B) {
	ctx := context.Background()
	core := appliancetest.New(b, appliancetest.Options{})
	if err := core.Admin.AddUser(ctx, admin.NewUser{Name: "alice", Password: secrets.Secret(benchPassword)}); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, core.Dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	devs := make([]store.Device, postureDevices)
	for i := range devs {
		devs[i] = store.Device{SourceID: "dev-" + strconv.Itoa(i), Description: "LAPTOP-" + strconv.Itoa(i), Serial: "S" + strconv.Itoa(i),
			UserName: "user" + strconv.Itoa(i) + "@clinic.example", MACs: []string{mac(i, 0), mac(i, 1)}, Compliance: store.Compliant, SyncedAt: now}
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ReplaceSourceDevices(ctx, store.SourceIntune, devs, now)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	// The lookup alone, as the gate makes it for each login.
	b.Run(fmt.Sprintf("lookup-only/devices=%d", postureDevices), func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			m, _ := policy.NormalizeMAC(mac(i%postureDevices, 1))
			ds, err := st.DevicesByMAC(ctx, m)
			if err != nil || len(ds) != 1 {
				b.Fatalf("%d devices, %v", len(ds), err)
			}
		}
	})
	for _, sc := range []struct {
		name string
		rule policy.Posture
	}{{"posture=off", policy.Posture{}}, {"posture=compliant", policy.Posture{Device: policy.DeviceCompliant}}} {
		b.Run(fmt.Sprintf("%s/devices=%d", sc.name, postureDevices), func(b *testing.B) {
			pol := policy.Default()
			pol.MFA, pol.Posture = policy.MFAOff, sc.rule
			c := store.Client{Name: "ap", Door: "radius", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Policy: pol}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				d, err := core.Gate.Decide(ctx, appliance.Request{Door: appliance.DoorRADIUS, Client: c, User: "alice",
					Password: secrets.Secret(benchPassword), Method: appliance.MethodPAP, Device: mac(i%postureDevices, 1), Source: netip.MustParseAddr("10.0.0.5")})
				if err != nil || d.Outcome != appliance.Accept {
					b.Fatalf("%s %s %v %v", d.Outcome, d.Reason, d.Steps, err)
				}
			}
		})
	}
}

// mac is device i's k-th MAC address, in the form a NAS sends.
func mac(i, k int) string {
	return fmt.Sprintf("02-%02X-%02X-%02X-00-%02X", k, i>>8&0xff, i&0xff, i>>16&0xff)
}
