package whatsapp

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

var (
	_ remote.TimerChange            = (*timerEvent)(nil)
	_ remote.Described              = (*timerEvent)(nil)
	_ bridgev2.RemoteChatInfoChange = (*timerEvent)(nil)
)

// Disappearing messages: a message that carries a timer (its context
// info's Expiration, in a chat whose timer is on) disappears from the
// portal when the timer ends, counted from when it was sent, unless the
// organisation keeps disappearing messages (remote.Hooks.KeepDisappearing:
// then it stays for good). A change of a chat's timer, from either side's
// phone, sets the portal's timer (bridgev2 shows a notice); the gate audits
// it (remote.TimerChange).

// disappearOf is the disappearing setting of a message: after sending, for
// its timer; none without a timer or when the organisation keeps them.
func (cl *Client) disappearOf(msg *waE2E.Message) database.DisappearingSetting {
	secs := contextInfoOf(msg).GetExpiration()
	if secs == 0 || cl.main.KeepDisappearing() {
		return database.DisappearingSetting{}
	}
	return database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: time.Duration(secs) * time.Second}
}

// timerEvent is a change of a chat's disappearing timer.
type timerEvent struct {
	*simplevent.ChatInfoChange
	heldBase
	timer   time.Duration
	byStaff bool
}

// DisappearingTimer implements remote.TimerChange.
func (e *timerEvent) DisappearingTimer() (time.Duration, bool) { return e.timer, e.byStaff }

// timerEvent builds the event of an EPHEMERAL_SETTING protocol message.
func (cl *Client) timerEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*timerEvent, error) {
	info := &evt.Info
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	timer := time.Duration(evt.Message.GetProtocolMessage().GetEphemeralExpiration()) * time.Second
	setting := database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: timer}.Normalize()
	sender := cl.eventSender(info, senderJID)
	te := &timerEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta: simplevent.EventMeta{
				Type: bridgev2.RemoteEventChatInfoChange, PortalKey: portalKey, Sender: sender, Timestamp: info.Timestamp,
				LogContext: func(c zerolog.Context) zerolog.Context {
					return c.Str("wa_message_id", info.ID).Dur("timer", timer)
				},
			},
			ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Disappear: &setting}},
		},
		heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID},
		timer:    timer,
		byStaff:  info.IsFromMe,
	}
	te.describe(ctx, sender)
	return te, nil
}
