package radius

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/clinicgate/clinicgate/appliance"
)

// hangGuard bounds waits on the network so a broken server fails the test
// instead of hanging it. It is never what a test asserts.
const hangGuard = 30 * time.Second

// waitFor polls cond until it holds or hangGuard has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// loopbackServer is a fixture whose client is 127.0.0.1, served on real
// UDP sockets.
func loopbackServer(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.clients.clients = []appliance.Client{testClient("loopback", "127.0.0.1/32")}
	return f
}

// listen opens a socket on 127.0.0.1:0 and serves it with serve, returning
// its address and the channel serve's result arrives on.
func listen(t *testing.T, serve func(net.PacketConn) error) (*net.UDPAddr, <-chan error) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	done := make(chan error, 1)
	go func() { done <- serve(conn) }()
	return conn.LocalAddr().(*net.UDPAddr), done
}

// nas is a UDP socket on 127.0.0.1 talking to addr.
func nas(t *testing.T, addr *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, radius.MaxPacketLength)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	return buf[:n]
}

func waitServe(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatal("Serve did not return after Shutdown")
		return nil
	}
}

func TestServeAndShutdown(t *testing.T) {
	f := loopbackServer(t)
	f.gate.decision = appliance.Decision{Outcome: appliance.Accept, Attributes: appliance.Attributes{VLAN: 20}}
	authAddr, authDone := listen(t, f.s.Serve)
	acctAddr, acctDone := listen(t, f.s.ServeAccounting)

	t.Run("Access-Request", func(t *testing.T) {
		c := nas(t, authAddr)
		b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		mustReply(t, read(t, c), b, radius.CodeAccessAccept)
	})
	t.Run("layeh client", func(t *testing.T) {
		// radius.Exchange checks the Response Authenticator itself.
		p := accessRequest(t, "alice", "correct horse")
		b := signed(t, p, testSecret)
		p.Add(typeMA, radius.Attribute(b[len(b)-16:])) // p now encodes to b
		resp, err := radius.Exchange(t.Context(), p, authAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != radius.CodeAccessAccept {
			t.Errorf("got %v, want Access-Accept", resp.Code)
		}
	})
	t.Run("Accounting-Request", func(t *testing.T) {
		c := nas(t, acctAddr)
		b := acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if p := checkResponseAuth(t, read(t, c), b, testSecret); p != nil && p.Code != radius.CodeAccountingResponse {
			t.Errorf("got %v, want Accounting-Response", p.Code)
		}
	})

	if err := f.s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: got %v, want nil", err)
	}
	for name, done := range map[string]<-chan error{"Serve": authDone, "ServeAccounting": acctDone} {
		if err := waitServe(t, done); !errors.Is(err, ErrServerClosed) {
			t.Errorf("%s: got %v, want ErrServerClosed", name, err)
		}
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := f.s.Serve(conn); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: got %v, want ErrServerClosed", err)
	}
}

func TestServeNeedsGateAndClients(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := (&Server{}).Serve(conn); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("got %v, want an error naming the missing dependencies", err)
	}
}

func TestServeDropsOversizedDatagram(t *testing.T) {
	f := loopbackServer(t)
	addr, done := listen(t, f.s.Serve)
	c := nas(t, addr)
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	big := append(append([]byte{}, b...), make([]byte, radius.MaxPacketLength)...)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	// Packets are handled in order of arrival; once the next one is
	// answered, the oversized one has been seen.
	b2 := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	if _, err := c.Write(b2); err != nil {
		t.Fatal(err)
	}
	mustReply(t, read(t, c), b2, radius.CodeAccessReject)
	waitFor(t, "the oversized datagram to be counted", func() bool { return f.dropped("too_long") == 1 })
	if n := len(f.gate.calls()); n != 1 {
		t.Errorf("got %d calls to Decide, want 1", n)
	}
	if err := f.s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: got %v, want nil", err)
	}
	if err := waitServe(t, done); !errors.Is(err, ErrServerClosed) {
		t.Errorf("got %v, want ErrServerClosed", err)
	}
}

// TestFloodDroppedNotQueued: with every worker busy and the queue full,
// further requests are dropped and counted (the NAS retransmits) instead of
// piling up, and the server recovers once the gate answers.
func TestFloodDroppedNotQueued(t *testing.T) {
	const sent = 50
	f := loopbackServer(t)
	f.s.Workers, f.s.Queue = 1, 1
	f.gate.entered = make(chan struct{}, sent)
	f.gate.release = make(chan struct{})
	addr, done := listen(t, f.s.Serve)
	c := nas(t, addr)

	reqs := map[byte][]byte{}
	for i := range sent {
		p := accessRequest(t, "alice", "correct horse")
		p.Identifier = byte(i)
		rfc2865.NASIdentifier_SetString(p, "flood")
		b := signed(t, p, testSecret)
		reqs[byte(i)] = b
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-f.gate.entered:
	case <-time.After(hangGuard):
		t.Fatal("the gate was never asked")
	}
	// One request is with the gate and at most one waits in the queue;
	// every other one must have been dropped.
	overload := func() float64 { return f.dropped("overload") }
	waitFor(t, "the flood to be dropped", func() bool { return overload() >= sent-2 })

	close(f.gate.release)
	waitFor(t, "every request to be decided or dropped", func() bool {
		return len(f.gate.calls())+int(overload()) == sent
	})
	decided := len(f.gate.calls())
	if decided < 1 || decided > 2 {
		t.Errorf("got %d requests decided, want 1 or 2 (one worker, a queue of one)", decided)
	}
	for range decided {
		reply := read(t, c)
		req, ok := reqs[reply[1]]
		if !ok {
			t.Fatalf("got a reply with identifier %d, which was never sent", reply[1])
		}
		mustReply(t, reply, req, radius.CodeAccessReject)
	}
	if err := f.s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: got %v, want nil", err)
	}
	if err := waitServe(t, done); !errors.Is(err, ErrServerClosed) {
		t.Errorf("got %v, want ErrServerClosed", err)
	}
}

// countingDecider tracks decisions in progress.
type countingDecider struct {
	fakeDecider
	active atomic.Int32
}

func (c *countingDecider) Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error) {
	c.active.Add(1)
	defer c.active.Add(-1)
	runtime.Gosched()
	return c.fakeDecider.Decide(ctx, req)
}

// TestShutdownUnderLoadWaitsForDecisions: Shutdown, while requests keep
// arriving, returns only when no decision is in progress, and Serve
// returns ErrServerClosed.
func TestShutdownUnderLoadWaitsForDecisions(t *testing.T) {
	f := loopbackServer(t)
	gate := &countingDecider{}
	gate.decision = appliance.Decision{Outcome: appliance.Reject, Message: appliance.MsgDenied}
	f.s.Gate = gate
	f.s.Workers, f.s.Queue = 4, 8
	addr, done := listen(t, f.s.Serve)
	c := nas(t, addr)

	var reqs [][]byte
	for i := range 256 {
		p := accessRequest(t, "alice", "correct horse")
		p.Identifier = byte(i)
		reqs = append(reqs, signed(t, p, testSecret))
	}
	stop := make(chan struct{})
	sender := make(chan struct{})
	go func() {
		defer close(sender)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Write(reqs[i%len(reqs)])
		}
	}()
	waitFor(t, "requests to be decided", func() bool { return len(gate.calls()) >= 20 })
	if err := f.s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: got %v, want nil", err)
	}
	if n := gate.active.Load(); n != 0 {
		t.Errorf("got %d decisions in progress after Shutdown returned, want 0", n)
	}
	close(stop)
	<-sender
	if err := waitServe(t, done); !errors.Is(err, ErrServerClosed) {
		t.Errorf("got %v, want ErrServerClosed", err)
	}
}
