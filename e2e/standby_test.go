package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// standbyTakeoverBound is what issue 14 asks of a standby: serving within
// 15 s of the active instance's death.
const standbyTakeoverBound = 15 * time.Second

// launch starts g without waiting for it to be ready and returns the length
// of its output file before this run (the file is appended to).
func launch(t *testing.T, g *stack.Gateway) (from int) {
	t.Helper()
	from = len(g.Log())
	if err := g.Launch(); err != nil {
		t.Fatal(err)
	}
	return from
}

// runLog is the readable output of g's run that started at from.
func runLog(g *stack.Gateway, from int) string {
	out := g.Log()
	if from > len(out) {
		return ""
	}
	return out[from:]
}

// waitLog waits until the output of g's run that started at from contains want.
func waitLog(ctx context.Context, t *testing.T, g *stack.Gateway, from int, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(runLog(g, from), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never appeared in %s:\n%s", want, g.StdoutPath, tail(runLog(g, from), 40))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
	}
}

// TestStandbyTakesOver: two gateway instances run with the same config on
// PostgreSQL; the second waits as a standby (it says so, and does not serve).
// While a contact on each network writes and the staff member answers each,
// the active instance is killed with SIGKILL: the standby serves within
// 15 s, every message arrives exactly once and in order, both ways on both
// networks, neither login is made again, and the killed instance started
// again becomes the standby.
func TestStandbyTakesOver(t *testing.T) {
	wa := newLoggingWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, omarPhone = "+33600000041", "+33600000042"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", omarPhone: "Omar Outside"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550041", "")
	s := NewStack(t, StackOptions{Postgres: true, WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tgRoom, waRoom, tgGhost, waGhost := linkBothNetworks(ctx, t, s, sam, wa, tg, staffPhone, omarPhone, tgStaff, tgContact)
	waStaff, _ := wa.Account(staffPhone)
	tgAuths, waDevices := tg.Authorizations(tgStaff.ID), len(waStaff.Devices())

	active := s.Gateway
	standby := active.Twin("standby")
	standbyRun := launch(t, standby)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- standby log (tail) %s ----\n%s", standby.StdoutPath, tail(standby.Log(), 150))
		}
		if err := standby.Stop(); err != nil {
			t.Logf("standby stop: %v", err)
		}
	})
	waitLog(ctx, t, standby, standbyRun, "Standby: another instance is active", time.Minute)

	streams := []*stream{
		{name: "telegram to matrix", send: func(ctx context.Context, body string) error {
			_, err := tg.SendMessage(tgContact.ID, tgStaff.ID, body, nil)
			return err
		}},
		{name: "whatsapp to matrix", send: func(ctx context.Context, body string) error {
			_, err := wa.SendText(ctx, omarPhone, staffPhone, body)
			return err
		}},
		{name: "matrix to telegram", send: func(ctx context.Context, body string) error {
			_, err := sam.Send(ctx, tgRoom, body)
			return err
		}},
		{name: "matrix to whatsapp", send: func(ctx context.Context, body string) error {
			_, err := sam.Send(ctx, waRoom, body)
			return err
		}},
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var load sync.WaitGroup
	for _, st := range streams {
		load.Add(1)
		go st.run(loadCtx, &load, nil)
	}
	sentOf := func(i int) []string { sent, _ := streams[i].result(); return sent }
	lastOf := func(i int) string {
		sent := sentOf(i)
		if len(sent) == 0 {
			return ""
		}
		return sent[len(sent)-1]
	}
	toTelegram := func() []string {
		var out []string
		for _, m := range tg.Messages(tgStaff.ID, tgContact.ID) {
			if m.From == tgStaff.ID {
				out = append(out, m.Text)
			}
		}
		return streams[2].received(out)
	}
	toWhatsApp := func() []string {
		var out []string
		for _, m := range wa.Messages() {
			if m.From == strings.TrimPrefix(staffPhone, "+") && m.To == strings.TrimPrefix(omarPhone, "+") {
				out = append(out, m.Text())
			}
		}
		return streams[3].received(out)
	}
	inPortal := func(room, ghost, last string) bool {
		evs, err := sam.Messages(ctx, room, 30)
		if err != nil {
			return false
		}
		return slices.Contains(bodiesOf(evs, ghost), last)
	}
	arrived := func() bool {
		return (lastOf(0) == "" || inPortal(tgRoom, tgGhost, lastOf(0))) &&
			(lastOf(1) == "" || inPortal(waRoom, waGhost, lastOf(1))) &&
			(lastOf(2) == "" || slices.Contains(toTelegram(), lastOf(2))) &&
			(lastOf(3) == "" || slices.Contains(toWhatsApp(), lastOf(3)))
	}

	// Mid-stream: the active instance has bridged a few messages each way.
	if !waitDrained(ctx, func() bool { return len(sentOf(0)) >= 5 && len(sentOf(2)) >= 5 && arrived() }) {
		t.Fatal("the active instance did not bridge the first messages")
	}
	if strings.Contains(runLog(standby, standbyRun), "Holding the lease") || !standby.Running() {
		t.Fatal("the standby took the lease, or stopped, while the active instance ran")
	}
	if err := active.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := standby.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	takeover := time.Since(killed)
	t.Logf("takeover: the standby answered /_matrix/mau/ready %s after the SIGKILL of the active instance", takeover.Round(time.Millisecond))
	if takeover > standbyTakeoverBound {
		t.Errorf("takeover took %s, more than %s", takeover.Round(time.Millisecond), standbyTakeoverBound)
	}

	// The load goes on through the new active instance for a while.
	sentAtKill := len(sentOf(0))
	if !waitDrained(ctx, func() bool { return len(sentOf(0)) >= sentAtKill+5 }) {
		t.Fatal("the load stopped after the takeover")
	}
	stopLoad()
	load.Wait()
	for _, st := range streams {
		if _, err := st.result(); err != nil {
			t.Fatalf("%s: a send failed: %v", st.name, err)
		}
	}
	quiet := time.Now()
	for !arrived() {
		if time.Since(quiet) > 2*time.Minute {
			t.Fatal("the last messages never arrived after the takeover")
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("the last messages arrived %s after the load stopped", time.Since(quiet).Round(time.Millisecond))

	// Exactly once, in order, both ways, on both networks. An event the
	// client is still decrypting shows as m.room.encrypted: read again
	// until none is left.
	bodiesIn := func(room, ghost string, st *stream) []string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			evs, err := sam.ServerHistory(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			pending := 0
			for _, ev := range evs {
				if ev.DecryptionError != "" {
					t.Errorf("event %s in %s could not be decrypted: %s", ev.EventID, room, ev.DecryptionError)
				} else if ev.Sender == ghost && ev.ClearType == "m.room.encrypted" {
					pending++
				}
			}
			if pending == 0 || time.Now().After(deadline) {
				if pending > 0 {
					t.Errorf("%d events of %s in %s never decrypted", pending, ghost, room)
				}
				return st.received(bodiesOf(evs, ghost))
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	reports := []deliveryReport{
		compareDelivery(sentOf(0), bodiesIn(tgRoom, tgGhost, streams[0])),
		compareDelivery(sentOf(1), bodiesIn(waRoom, waGhost, streams[1])),
		compareDelivery(sentOf(2), toTelegram()),
		compareDelivery(sentOf(3), toWhatsApp()),
	}
	for i, r := range reports {
		t.Logf("%-20s %s", streams[i].name+":", r)
		if !r.ok() {
			t.Errorf("%s: %s; missing %q, duplicated %q, first out of order at %s",
				streams[i].name, r, r.missingBodies, r.duplicatedBodies, r.firstOutOfOrder)
		}
	}
	if n := tg.Authorizations(tgStaff.ID); n != tgAuths {
		t.Errorf("Telegram authorizations: %d, was %d (a new login?)", n, tgAuths)
	}
	if n := len(waStaff.Devices()); n != waDevices {
		t.Errorf("WhatsApp linked devices: %d, was %d (linked again?)", n, waDevices)
	}

	// The killed instance, started again, is now the standby.
	activeRun := launch(t, active)
	waitLog(ctx, t, active, activeRun, "Standby: another instance is active", time.Minute)

	// The database ends the active instance's lease session (as a dropped
	// connection would): the instance sees it, stops with exit code 41,
	// and the other one takes over.
	cfg, err := active.Config()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", cfg.GetString("database.uri"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ended int
	if err = db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&ended); err != nil || ended != 1 {
		t.Fatalf("ending the lease session: %d sessions ended, %v", ended, err)
	}
	cut := time.Now()
	exitCtx, cancelExit := context.WithTimeout(ctx, time.Minute)
	defer cancelExit()
	code, err := standby.Exited(exitCtx)
	if err != nil || code != 41 {
		t.Fatalf("the instance whose lease session ended: exit code %d, %v; want 41", code, err)
	}
	stopped := time.Since(cut)
	if err = active.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("lease session ended: the active instance stopped after %s, the other served after %s",
		stopped.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	if !strings.Contains(runLog(standby, standbyRun), "Lost the lease") {
		t.Error("the instance that lost its lease did not say so in its log")
	}

	// An orderly stop (SIGTERM) gives the lease back: the standby serves
	// at its next try.
	standbyRun = launch(t, standby)
	waitLog(ctx, t, standby, standbyRun, "Standby: another instance is active", time.Minute)
	if err = active.Stop(); err != nil {
		t.Fatal(err)
	}
	cut = time.Now()
	if err = standby.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("orderly stop: the standby served %s after the active instance exited", time.Since(cut).Round(time.Millisecond))

	// A standby stops on SIGTERM while it waits.
	activeRun = launch(t, active)
	waitLog(ctx, t, active, activeRun, "Standby: another instance is active", time.Minute)
	if err = active.Stop(); err != nil {
		t.Fatalf("stopping a waiting standby: %v", err)
	}
	if !strings.Contains(runLog(active, activeRun), "Interrupted while waiting as a standby") {
		t.Error("the standby did not say it stopped while waiting")
	}
}

// TestStandbySQLiteRefusesSecondInstance: on SQLite a second instance with
// the same config exits at once with a message saying why, and the first
// keeps serving.
func TestStandbySQLiteRefusesSecondInstance(t *testing.T) {
	s := NewStack(t, StackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := s.Gateway.Twin("second")
	if err := second.Launch(); err != nil {
		t.Fatal(err)
	}
	code, err := second.Exited(ctx)
	if err != nil {
		t.Fatalf("the second instance did not exit: %v\n%s", err, second.Log())
	}
	out := second.Log()
	t.Logf("second instance: exit code %d: %s", code, strings.TrimSpace(out))
	if code != 40 || !strings.Contains(out, "another Passerelle instance is running on the SQLite database") ||
		!strings.Contains(out, "use PostgreSQL") {
		t.Errorf("second instance: exit code %d, output %q; want 40 and the refusal", code, out)
	}
	if err = s.Gateway.WaitReady(ctx, 10*time.Second); err != nil {
		t.Errorf("the first instance stopped serving: %v", err)
	}
	if !s.Gateway.Running() {
		t.Error("the first instance is gone")
	}
}

// TestGatewayRefusesTakenAddress: a gateway whose appservice address is
// taken by another program exits at start with a message naming the
// address, instead of running on without a listener (bridgev2 binds it in
// the background and only logs the failure, and the homeserver's
// transactions then go to the other program).
func TestGatewayRefusesTakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	// No homeserver: the address is checked before the gateway talks to one.
	deadHS, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gw, err := stack.NewGateway(ctx, stack.GatewayOptions{
		Binary: needGateway(t), Dir: filepath.Join(testDir(t), "gateway"), Port: port,
		HomeserverURL: fmt.Sprintf("http://127.0.0.1:%d", deadHS),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err = gw.Launch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Stop() })
	code, err := gw.Exited(ctx)
	if err != nil {
		t.Fatalf("the gateway kept running on a taken address: %v\n%s", err, gw.Log())
	}
	out := gw.Log()
	want := fmt.Sprintf("the appservice address 127.0.0.1:%d", port)
	if code != 14 || !strings.Contains(out, want) || !strings.Contains(out, "address already in use") {
		t.Errorf("exit code %d, output:\n%s\nwant 14 and %q ... address already in use", code, out, want)
	}
	t.Logf("exit code %d: %s", code, lastLine(out))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
