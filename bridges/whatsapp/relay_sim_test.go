package whatsapp

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// relayConfig is bridgev2's relay configuration as an operator writes it:
// read from YAML, so that its message templates are compiled.
func relayConfig(t testing.TB) bridgeconfig.RelayConfig {
	t.Helper()
	var relay bridgeconfig.RelayConfig
	if err := yaml.Unmarshal([]byte(`
enabled: true
message_formats:
    m.text: "<b>{{ .Sender.DisambiguatedName }}</b>: {{ .Message }}"
displayname_format: "{{ .DisambiguatedName }}"
`), &relay); err != nil {
		t.Fatal(err)
	}
	return relay
}

// TestGroupRelay: with relay mode on, a staff member makes their login the
// relay of a group portal with the set-relay command; a Matrix user without
// a WhatsApp login then writes in the group through it, and on WhatsApp the
// message names who wrote it.
func TestGroupRelay(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	tb.br.Config.Relay = relayConfig(t)
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	aliceLogin := loginQRAs(t, tb, srv, testUser, alicePh)

	gid, err := srv.CreateGroup(ctx, carolPh, "Relayed", "", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	key := networkid.PortalKey{ID: networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))}
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		// Read from the database: the portal's cached fields belong to
		// its event loop.
		p, err := tb.br.DB.Portal.GetByKey(ctx, key)
		if err != nil || p == nil || p.MXID == "" {
			return false
		}
		roomID = p.MXID
		return isIn(tb.mx.Members(roomID)[testUser])
	}) {
		t.Fatal("the group portal was never created")
	}

	// Before a relay is set, Dave (no WhatsApp login) is told.
	evtID := injectAs(ctx, tb, daveUser, roomID, "before the relay")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status != event.MessageStatusSuccess && st.SendNotice {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no failed status with notice without a relay: %+v", tb.mx.StatusesOf(evtID))
	}

	// Alice makes her login the relay with the bridge command.
	injectAs(ctx, tb, testUser, roomID, "!wa set-relay")
	if !tb.mx.Eventually(waitLong, func() bool {
		p, _ := tb.br.DB.Portal.GetByKey(ctx, key)
		return p != nil && p.RelayLoginID == aliceLogin.ID
	}) {
		t.Fatal("set-relay never made Alice's login the portal's relay")
	}

	evtID = injectAs(ctx, tb, daveUser, roomID, "relayed hello")
	m, err := srv.WaitMessage(ctx, alicePh, gid, func(m wasim.Message) bool { return strings.Contains(m.Text(), "relayed hello") })
	if err != nil {
		t.Fatalf("the relayed message never reached the group: %v (statuses %+v)", err, tb.mx.StatusesOf(evtID))
	}
	if !m.Group || !strings.Contains(m.Text(), "dave") || strings.HasPrefix(m.Text(), "relayed hello") {
		t.Errorf("relayed message %q from %s: want it from Alice's account, naming Dave first", m.Text(), m.From)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		msg, err := tb.br.DB.Message.GetPartByMXID(ctx, evtID)
		return err == nil && msg != nil
	}) {
		t.Fatal("the relayed message never mapped")
	}
	// Alice still writes as herself, without a prefix.
	injectAs(ctx, tb, testUser, roomID, "alice herself")
	if m, err = srv.WaitMessage(ctx, alicePh, gid, func(m wasim.Message) bool { return strings.Contains(m.Text(), "alice herself") }); err != nil || m.Text() != "alice herself" {
		t.Fatalf("Alice's own message: %q, %v", m.Text(), err)
	}
	// Nothing "before the relay" was sent.
	for _, m := range srv.Messages() {
		if strings.Contains(m.Text(), "before the relay") {
			t.Fatal("a message refused without a relay reached the group")
		}
	}
}

// TestGroupLeaveFromMatrix: a staff member leaving a group portal in Matrix
// stays in the WhatsApp group by default; with bridgev2's
// bridge_matrix_leave switch on, their account leaves the group.
func TestGroupLeaveFromMatrix(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[on], func(t *testing.T) {
			srv := startSim(t)
			tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
			tb.br.Config.BridgeMatrixLeave = on
			t.Cleanup(func() { idle(t, tb, srv) })
			ctx := ctxFor(t)
			loginQRAs(t, tb, srv, testUser, alicePh)
			gid, err := srv.CreateGroup(ctx, carolPh, "Leavers", "", []string{alicePh, bobPh})
			if err != nil {
				t.Fatal(err)
			}
			key := networkid.PortalKey{ID: networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))}
			var roomID id.RoomID
			if !tb.mx.Eventually(waitLong, func() bool {
				p, err := tb.br.DB.Portal.GetByKey(ctx, key)
				if err != nil || p == nil || p.MXID == "" {
					return false
				}
				roomID = p.MXID
				return isIn(tb.mx.Members(roomID)[testUser])
			}) {
				t.Fatal("the group portal was never created")
			}
			inGroup := func(phone string) bool {
				g, _ := srv.GroupInfo(gid)
				return slices.Contains(g.Members, phone)
			}
			// Alice sends a message first so that her login is in the
			// portal's event loop ahead of the leave.
			injectAs(ctx, tb, testUser, roomID, "before leaving")
			if _, err = srv.WaitMessage(ctx, alicePh, gid, func(m wasim.Message) bool { return m.Text() == "before leaving" }); err != nil {
				t.Fatal(err)
			}
			injectState(ctx, tb, roomID, event.StateMember, string(testUser),
				&event.MemberEventContent{Membership: event.MembershipLeave}, &event.MemberEventContent{Membership: event.MembershipJoin})
			if on {
				if !tb.mx.Eventually(waitLong, func() bool { return !inGroup(alicePh) }) {
					t.Fatal("leaving the portal did not leave the WhatsApp group")
				}
				if !inGroup(bobPh) || !inGroup(carolPh) {
					t.Fatal("someone else left the group too")
				}
				return
			}
			// Off: the leave is dropped. Carol's next message is bridged
			// after it, and Alice is still in the group.
			if _, err = srv.SendGroupText(ctx, carolPh, gid, "still there?", nil); err != nil {
				t.Fatal(err)
			}
			tb.waitMsg(t, "Carol's message", func(m fakematrix.Message) bool { return m.Content.Body == "still there?" })
			if !inGroup(alicePh) {
				t.Fatal("Alice left the WhatsApp group with the switch off")
			}
		})
	}
}

// TestNoRelayInDirectChat: a relay set in a staff member's direct chat
// does not let another Matrix user write to the contact through it.
func TestNoRelayInDirectChat(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	tb.br.Config.Relay = relayConfig(t)
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	ul := loginQR(t, tb, srv)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hi Alice"); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hi Alice" })
	// Alice makes her login the relay of her own DM with the command.
	key := mustKey(t, "whatsapp."+bobPh, ul)
	injectAs(ctx, tb, testUser, got.RoomID, "!wa set-relay")
	if !tb.mx.Eventually(waitLong, func() bool {
		p, _ := tb.br.DB.Portal.GetByKey(ctx, key)
		return p != nil && p.RelayLoginID == ul.ID
	}) {
		t.Fatal("set-relay never made Alice's login the DM's relay")
	}
	evtID := injectAs(ctx, tb, daveUser, got.RoomID, "dave in a DM")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && st.SendNotice && strings.Contains(st.Error(), "not relayed") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a relayed message in a DM: statuses %+v", tb.mx.StatusesOf(evtID))
	}
	// Alice's own message after it goes out, and Dave's never did.
	injectAs(ctx, tb, testUser, got.RoomID, "alice in her DM")
	if _, err := srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.Text() == "alice in her DM" }); err != nil {
		t.Fatal(err)
	}
	for _, m := range srv.Messages() {
		if strings.Contains(m.Text(), "dave in a DM") {
			t.Fatal("a relayed message reached a staff member's contact")
		}
	}
}
