package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// timerEvent is a chat's disappearing timer changed by its contact, as a
// connector hands it to the gate (remote.TimerChange).
type timerEvent struct {
	key    networkid.PortalKey
	sender networkid.UserID
	timer  time.Duration
}

var (
	_ bridgev2.RemoteChatInfoChange = timerEvent{}
	_ remote.TimerChange            = timerEvent{}
)

func (e timerEvent) GetType() bridgev2.RemoteEventType               { return bridgev2.RemoteEventChatInfoChange }
func (e timerEvent) GetPortalKey() networkid.PortalKey               { return e.key }
func (e timerEvent) AddLogContext(c zerolog.Context) zerolog.Context { return c }
func (e timerEvent) GetSender() bridgev2.EventSender                 { return bridgev2.EventSender{Sender: e.sender} }
func (e timerEvent) DisappearingTimer() (time.Duration, bool)        { return e.timer, false }
func (e timerEvent) GetChatInfoChange(context.Context, *bridgev2.Portal) (*bridgev2.ChatInfoChange, error) {
	return &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{
		Disappear: &database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: e.timer},
	}}, nil
}

// TestTimerChangesAudited: a chat's disappearing timer change that the gate
// lets through is an audit entry (the new timer, by whom, whether the
// organisation keeps the messages anyway); the connectors learn the
// organisation's choice (disappearing_messages) from their hooks.
func TestTimerChangesAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.DisappearingMessages = gate.DisappearingKeep })
		r := e.start()
		login := e.loginStaff(r)
		if !r.conn.KeepDisappearing() {
			t.Error("disappearing_messages: keep did not reach the Telegram connector")
		}
		e.send(e.bob, "from now on our messages disappear")
		e.waitBodies(e.bob, "from now on our messages disappear")
		r.gv.Queue(login, timerEvent{key: e.portalKey(e.bob), sender: tgid.MakeUserID(e.bob.ID), timer: 24 * time.Hour})
		entries := waitAudit(t, r, audit.ActionTimerChanged)
		d := string(entries[0].Details)
		for _, want := range []string{`"timer":"24h0m0s"`, `"by":"contact"`, `"kept":true`} {
			if !strings.Contains(d, want) {
				t.Errorf("timer_changed entry %s lacks %s", d, want)
			}
		}
		if entries[0].Portal != e.portalKey(e.bob).ID || entries[0].Contact == "" {
			t.Errorf("timer_changed entry does not name the chat and the contact: %+v", entries[0])
		}
	})
}
