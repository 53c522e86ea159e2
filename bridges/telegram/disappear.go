package telegram

import (
	"context"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

// Self-destructing messages: a Telegram message with a ttl_period
// disappears from Matrix when its period has passed (bridgev2's disappearing
// messages, counted from when it was sent), and Telegram's deletion of it
// then deletes the Matrix copy too; a chat's timer change
// (messageActionSetMessagesTTL) sets the portal's disappearing timer, with a
// notice. When the organisation keeps disappearing messages
// (remote.Hooks.KeepDisappearing), the Matrix copies stay: no timer, and
// Telegram's deletion at expiry is not bridged.

var (
	_ remote.TimerChange = (*timerChangeEvent)(nil)
	_ remote.Described   = (*timerChangeEvent)(nil)
)

// expirySlack is how early before its expiry Telegram's deletion of a
// self-destructing message is taken for the expiry (clocks differ).
const expirySlack = time.Minute

// applyTTL makes a self-destructing message disappear from Matrix after its
// period, unless the organisation keeps them; its rows remember the period.
func (c *Client) applyTTL(cm *bridgev2.ConvertedMessage, msg *tg.Message) {
	ttl, ok := msg.GetTTLPeriod()
	if !ok || ttl <= 0 {
		return
	}
	for _, part := range cm.Parts {
		part.DBMetadata = &tgid.MessageMetadata{TTL: ttl}
	}
	if c.main.KeepDisappearing() {
		return
	}
	cm.Disappear = database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: time.Duration(ttl) * time.Second}
}

// expiryKept tells whether Telegram's deletion of a bridged message is the
// expiry of a self-destructing message that the organisation keeps.
func (c *Client) expiryKept(msg *database.Message) bool {
	if !c.main.KeepDisappearing() {
		return false
	}
	ttl := meta.Get[tgid.MessageMetadata](msg.Metadata).TTL
	if ttl <= 0 {
		return false
	}
	expiry := msg.Timestamp.Add(time.Duration(ttl) * time.Second)
	return !clock.Or(c.main.Clock).Now().Before(expiry.Add(-expirySlack))
}

// timerChangeEvent is a chat's self-destruct timer changed.
type timerChangeEvent struct {
	*simplevent.ChatInfoChange
	description
	timer time.Duration
}

// DisappearingTimer implements remote.TimerChange.
func (e *timerChangeEvent) DisappearingTimer() (time.Duration, bool) {
	return e.timer, e.Sender.IsFromMe
}

// handleTimerChange bridges a chat's new self-destruct timer (0: off).
func (c *Client) handleTimerChange(ctx context.Context, msg *tg.MessageService, period int) {
	var peer tgid.Peer
	var sender bridgev2.EventSender
	switch p := msg.PeerID.(type) {
	case *tg.PeerUser:
		peer = tgid.Peer{Type: tgid.PeerUser, ID: p.UserID}
		sender = c.userSender(p.UserID)
		if msg.Out {
			sender = c.userSender(c.userID)
		}
	case *tg.PeerChannel:
		peer = tgid.Peer{Type: tgid.PeerChannel, ID: p.ChannelID}
		sender = c.channelSender(msg.FromID, p.ChannelID)
	default:
		// Basic groups: their portal is shared by logins numbering
		// messages in their own boxes; not bridged yet.
		zerolog.Ctx(ctx).Debug().Int("tg_message_id", msg.ID).Msg("Ignoring a basic group's self-destruct timer")
		return
	}
	timer := time.Duration(period) * time.Second
	info := &bridgev2.ChatInfo{}
	if !c.main.KeepDisappearing() {
		setting := database.DisappearingSetting{Type: event.DisappearingTypeNone}
		if timer > 0 {
			setting = database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: timer}
		}
		info.Disappear = &setting
	}
	evt := &timerChangeEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta:      messageMeta(bridgev2.RemoteEventChatInfoChange, tgid.MakePortalKey(peer, c.login.ID), peer, sender, msg.ID, msg.Date),
			ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: info},
		},
		description: c.describe(peer, sender),
		timer:       timer,
	}
	if peer.Type == tgid.PeerChannel {
		evt.description.chat = c.channelChat(peer.ID)
	}
	c.deliverSignal(ctx, evt, "timer_change")
}
