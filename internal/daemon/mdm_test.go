package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/posture"
	"github.com/clinicgate/clinicgate/appliance/posture/mdmtest"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestDaemonSyncsTheMDMItIsGiven: an MDM set while the daemon runs is
// synced without a restart, and `mdm sync` is served by the daemon.
func TestDaemonSyncsTheMDMItIsGiven(t *testing.T) {
	devs := make([]mdmtest.GraphDevice, 3)
	for i := range devs {
		devs[i] = mdmtest.GraphDevice{ID: fmt.Sprint("d", i), DeviceName: fmt.Sprint("PC", i), ComplianceState: "compliant", WiFiMacAddress: fmt.Sprintf("02000000000%d", i)}
	}
	g := mdmtest.NewGraph("tenant-1", "app-1", "app secret", devs)
	defer g.Close()
	cfg := loopback(t)
	cfg.LDAP.Listen, cfg.LDAP.ListenTLS, cfg.SSH = "", "", ""
	d := open(t, cfg)
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	defer func() {
		if err := d.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		<-ran
	}()
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	err = svc.SetMDM(t.Context(), admin.MDMConfig{Name: "intune", Secret: []byte("app secret"),
		Intune: &posture.IntuneSettings{TenantID: "tenant-1", ClientID: "app-1", LoginURL: g.URL, GraphURL: g.URL}})
	if err != nil {
		t.Fatal(err)
	}
	g.SetDevices(devs[:2])
	out, err := svc.SyncMDM(t.Context(), "intune", 20*time.Second)
	if err != nil || !out.Done || out.Err != "" || out.Devices != 2 {
		t.Fatalf("mdm sync: got %+v, %v; want 2 devices", out, err)
	}
	ds, err := d.store.SourceDevices(t.Context(), store.SourceIntune)
	if err != nil || len(ds) != 2 {
		t.Fatalf("inventory: got %d records (%v), want 2", len(ds), err)
	}
}
