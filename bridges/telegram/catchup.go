package telegram

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

// Catching up after a gap Telegram does not list: when the account was away
// too long (updates.differenceTooLong, or a channel's
// channelDifferenceTooLong), Telegram only gives the current state. The
// connector then goes through the account's chats (messages.getDialogs,
// most recent first) and, for each chat active during the gap, fetches the
// messages after the last one its portal has (getHistory, pages of 100,
// oldest first) and hands them over as live messages, through the gate: in
// order, and once (bridgev2 drops a message ID it already has). A chat
// without a portal gets its latest initial_messages, as a new portal would.
// Edits and deletions of the gap are as Telegram shows the history: a new
// message edited since comes edited, a deleted one not at all; of the chat's
// latest page of messages bridged before the gap, one edited after the
// account last had its updates is edited, one missing is deleted (older
// ones are left as they are). Basic groups get the new messages only.

const (
	// catchUpWhat names what is caught up in the management room notices.
	catchUpWhat = "your Telegram account"
	// maxCatchUpChats bounds the chats one catch-up goes through.
	maxCatchUpChats = 10000
	// maxPendingChannels bounds the channels waiting for their catch-up.
	maxPendingChannels = 1000
	// dialogsPage is how many chats one messages.getDialogs asks for.
	dialogsPage = 100
)

// catchUpChat is a chat to catch up: its peer and its top message, and
// since when (Unix time; 0: unknown) the account missed its updates.
type catchUpChat struct {
	peer  tgid.Peer
	top   int
	since int
}

// noteTooLong records, before the updates manager moves the stored state
// past the gap, that the account's chats must be caught up: a restart
// before the catch-up ends does it again.
func (c *Client) noteTooLong(ctx context.Context, since, total int) error {
	c.catchUpMu.Lock()
	defer c.catchUpMu.Unlock()
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	if md.CatchUp == nil {
		md.CatchUp = &tgid.CatchUpState{}
	}
	if md.CatchUp.Since == 0 || since < md.CatchUp.Since {
		md.CatchUp.Since = max(since, 1)
	}
	md.CatchUp.Total += total
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save the catch-up to do: %w", err)
	}
	return nil
}

// noteChannelTooLong records a channel whose gap is too long.
func (c *Client) noteChannelTooLong(ctx context.Context, channelID int64) error {
	c.catchUpMu.Lock()
	defer c.catchUpMu.Unlock()
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	if md.CatchUp == nil {
		md.CatchUp = &tgid.CatchUpState{}
	}
	if slices.Contains(md.CatchUp.Channels, channelID) || len(md.CatchUp.Channels) >= maxPendingChannels {
		return nil
	}
	md.CatchUp.Channels = append(md.CatchUp.Channels, channelID)
	if err := c.login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save the channel catch-up to do: %w", err)
	}
	return nil
}

// pendingCatchUp is the catch-up recorded (a copy; nil: none).
func (c *Client) pendingCatchUp() *tgid.CatchUpState {
	c.catchUpMu.Lock()
	defer c.catchUpMu.Unlock()
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	if md.CatchUp == nil {
		return nil
	}
	cp := *md.CatchUp
	cp.Channels = slices.Clone(md.CatchUp.Channels)
	return &cp
}

// finishCatchUp forgets the chats' catch-up (all) or one channel's.
func (c *Client) finishCatchUp(ctx context.Context, all bool, channelID int64) {
	c.catchUpMu.Lock()
	defer c.catchUpMu.Unlock()
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	if md.CatchUp == nil {
		return
	}
	if all {
		md.CatchUp.Since, md.CatchUp.Total = 0, 0
	}
	md.CatchUp.Channels = slices.DeleteFunc(md.CatchUp.Channels, func(id int64) bool { return id == channelID })
	if md.CatchUp.Since == 0 && len(md.CatchUp.Channels) == 0 {
		md.CatchUp = nil
	}
	if err := c.login.Save(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to save the end of a catch-up")
	}
}

// runPendingCatchUp does the catch-up recorded, if any (at connection, once
// the updates manager has its state, before its first difference).
func (c *Client) runPendingCatchUp(ctx context.Context) {
	pending := c.pendingCatchUp()
	if pending == nil {
		return
	}
	if pending.Since != 0 {
		c.catchUpAll(ctx)
	}
	for _, id := range pending.Channels {
		c.catchUpChannel(ctx, id)
	}
}

// catchUpAll catches up every chat active since the recorded time, then
// forgets the catch-up. It runs in the updates manager (its OnTooLong), so
// live updates wait behind it and come after the history, and after what
// the chats' lanes were given before.
func (c *Client) catchUpAll(ctx context.Context) {
	defer c.recoverHandler(ctx, "catch_up")
	pending := c.pendingCatchUp()
	if pending == nil || pending.Since == 0 {
		return
	}
	if !c.chatsSettled(ctx) {
		return
	}
	log := zerolog.Ctx(ctx)
	chats, err := c.chatsActiveSince(ctx, pending.Since)
	if err != nil {
		log.Err(err).Msg("Failed to list the chats to catch up; they will be caught up at the next connection")
		return
	}
	log.Info().Int("chats", len(chats)).Int("gap", pending.Total).Msg("Catching up with the chats of a long gap")
	progress := remote.NewCatchUp(catchUpWhat, pending.Total, c.notifyManagement)
	bridged := 0
	for _, chat := range chats {
		n, err := c.catchUpChat(ctx, chat, progress)
		bridged += n
		if err != nil {
			if ctx.Err() != nil {
				log.Info().Int("bridged", bridged).Msg("Catch-up interrupted; it goes on at the next connection")
				return
			}
			log.Err(err).Str("tg_peer", chat.peer.String()).Msg("Failed to catch up with a chat")
		}
	}
	progress.Done(ctx)
	c.finishCatchUp(ctx, true, 0)
	log.Info().Int("bridged", bridged).Msg("Caught up with the chats of a long gap")
}

// catchUpChannel catches up one channel whose gap was too long.
func (c *Client) catchUpChannel(ctx context.Context, channelID int64) {
	defer c.recoverHandler(ctx, "catch_up_channel")
	chat := catchUpChat{peer: tgid.Peer{Type: tgid.PeerChannel, ID: channelID}}
	n, err := c.catchUpChat(ctx, chat, nil)
	if ctx.Err() != nil {
		// Interrupted: it goes on at the next connection.
		return
	}
	if err != nil {
		// A channel that cannot be read (left, private) is not tried again.
		zerolog.Ctx(ctx).Err(err).Int64("tg_channel_id", channelID).Msg("Failed to catch up with a channel")
	}
	c.finishCatchUp(ctx, false, channelID)
	zerolog.Ctx(ctx).Info().Int64("tg_channel_id", channelID).Int("bridged", n).Msg("Caught up with a channel")
}

// notifyManagement posts a notice to the staff member's management room.
func (c *Client) notifyManagement(ctx context.Context, text string) {
	if err := remote.ManagementNotice(ctx, c.login, text); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to post a catch-up notice")
	}
}

// chatsActiveSince lists the account's chats whose last message is after
// since (Unix time), most recent first, at most maxCatchUpChats: the list
// is taken before any chat is caught up, so that a chat moving to the top
// meanwhile is not missed.
func (c *Client) chatsActiveSince(ctx context.Context, since int) ([]catchUpChat, error) {
	var out []catchUpChat
	err := c.forDialogs(ctx, func(chat catchUpChat, date int) bool {
		if date != 0 && date < since {
			// Chats come by last activity: the rest is older.
			return false
		}
		chat.since = since
		out = append(out, chat)
		return len(out) < maxCatchUpChats
	})
	return out, err
}

// forDialogs goes through the account's chats, most recent first
// (messages.getDialogs, a page at a time), each once, with the date of its
// last message, until visit returns false.
func (c *Client) forDialogs(ctx context.Context, visit func(chat catchUpChat, date int) bool) error {
	api := c.api.Load()
	if api == nil {
		return ErrNotConnected
	}
	seen := map[tgid.Peer]bool{}
	offsetID, offsetDate := 0, 0
	var offsetPeer tg.InputPeerClass = &tg.InputPeerEmpty{}
	for len(seen) < maxCatchUpChats {
		res, err := api.MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{
			OffsetID: offsetID, OffsetDate: offsetDate, OffsetPeer: offsetPeer, Limit: dialogsPage,
		})
		if err != nil {
			return fmt.Errorf("failed to get the chats from Telegram: %w", err)
		}
		page, ok := res.AsModified()
		if !ok || len(page.GetDialogs()) == 0 {
			return nil
		}
		chats := map[int64]*tg.Channel{}
		for _, ch := range page.GetChats() {
			if channel, ok := ch.(*tg.Channel); ok {
				chats[channel.ID] = channel
			}
		}
		c.rememberEntities(ctx, tg.Entities{Users: usersOf(page.GetUsers()), Channels: chats})
		type msgKey struct {
			peer tgid.Peer
			id   int
		}
		dates := map[msgKey]int{}
		for _, raw := range page.GetMessages() {
			m, ok := raw.(interface {
				GetID() int
				GetDate() int
				GetPeerID() tg.PeerClass
			})
			if !ok {
				continue
			}
			if p, ok := peerOfClass(m.GetPeerID()); ok {
				dates[msgKey{p, m.GetID()}] = m.GetDate()
			}
		}
		for _, d := range page.GetDialogs() {
			dialog, ok := d.(*tg.Dialog)
			if !ok {
				continue
			}
			peer, ok := peerOfClass(dialog.Peer)
			if !ok {
				continue
			}
			date := dates[msgKey{peer, dialog.TopMessage}]
			offsetID, offsetDate = dialog.TopMessage, date
			if input, err := c.inputPeer(ctx, peer); err == nil {
				offsetPeer = input
			}
			if seen[peer] {
				continue
			}
			seen[peer] = true
			if !visit(catchUpChat{peer: peer, top: dialog.TopMessage}, date) {
				return nil
			}
		}
		if len(page.GetDialogs()) < dialogsPage {
			return nil
		}
	}
	return nil
}

// peerOfClass is the peer of a Telegram peer.
func peerOfClass(p tg.PeerClass) (tgid.Peer, bool) {
	switch v := p.(type) {
	case *tg.PeerUser:
		return tgid.Peer{Type: tgid.PeerUser, ID: v.UserID}, true
	case *tg.PeerChannel:
		return tgid.Peer{Type: tgid.PeerChannel, ID: v.ChannelID}, true
	case *tg.PeerChat:
		return tgid.Peer{Type: tgid.PeerChat, ID: v.ChatID}, true
	}
	return tgid.Peer{}, false
}

// lastBridged is the Telegram ID of the newest message the chat's portal
// has (0: no portal, or an empty one).
func (c *Client) lastBridged(ctx context.Context, key networkid.PortalKey) (int, error) {
	db := c.main.Bridge.DB.Message
	last, err := db.GetLastNInPortal(ctx, key, 1)
	if err != nil || len(last) == 0 {
		return 0, err
	}
	// Messages of the same second are ordered by their ID as text: look
	// at all of them.
	same, err := db.GetMessagesBetweenTimeQuery(ctx, key, last[0].Timestamp.Add(-time.Nanosecond), last[0].Timestamp)
	if err != nil {
		return 0, err
	}
	newest := 0
	for _, m := range append(same, last[0]) {
		if k, err := tgid.ParseMessageID(m.ID); err == nil {
			newest = max(newest, k.ID)
		}
	}
	return newest, nil
}

// lastBridgedBasic is this account's own ID of the newest message of a
// basic group's portal (0: no portal, an empty one, or a message this
// account has no copy of), whichever login bridged it.
func (c *Client) lastBridgedBasic(ctx context.Context, key networkid.PortalKey) (int, error) {
	last, err := c.main.Bridge.DB.Message.GetLastNInPortal(ctx, key, 1)
	if err != nil || len(last) == 0 {
		return 0, err
	}
	if k, err := tgid.ParseMessageID(last[0].ID); err == nil && k.Box == tgid.MessageBox(tgid.Peer{Type: tgid.PeerChat}, c.userID) {
		return k.ID, nil
	}
	return c.main.Store.BasicOwnID(ctx, last[0].ID, c.userID)
}

// catchUpChat hands over the messages of one chat after its portal's last
// one (oldest first, a page at a time), or its latest initial_messages when
// it has no portal. It returns how many it handed over.
func (c *Client) catchUpChat(ctx context.Context, chat catchUpChat, progress *remote.CatchUp) (int, error) {
	key := tgid.MakePortalKey(chat.peer, c.login.ID)
	var minID int
	var err error
	if chat.peer.Type == tgid.PeerChat {
		minID, err = c.lastBridgedBasic(ctx, c.basicPortalKey(ctx, chat.peer.ID))
	} else {
		minID, err = c.lastBridged(ctx, key)
	}
	if err != nil {
		return 0, fmt.Errorf("failed to find the chat's last bridged message: %w", err)
	}
	if chat.top != 0 && minID >= chat.top {
		return 0, nil
	}
	input, err := c.inputPeer(ctx, chat.peer)
	if err != nil {
		return 0, fmt.Errorf("cannot reach this Telegram chat: %w", err)
	}
	if minID == 0 {
		// No portal yet: what a new portal would get.
		n := min(c.main.Config.Backfill.InitialMessages, maxHistoryPage)
		if n <= 0 {
			return 0, nil
		}
		msgs, err := c.historyPage(ctx, &tg.MessagesGetHistoryRequest{Peer: input, Limit: n}, 0)
		if err != nil {
			return 0, err
		}
		c.handOver(ctx, msgs, progress)
		return len(msgs), nil
	}
	if chat.peer.Type != tgid.PeerChat {
		c.reconcileRecent(ctx, chat, input, key, minID)
	}
	total := 0
	for {
		msgs, err := c.historyPage(ctx, &tg.MessagesGetHistoryRequest{
			Peer: input, OffsetID: minID + 1, AddOffset: -maxHistoryPage, Limit: maxHistoryPage, MinID: minID,
		}, minID)
		if err != nil {
			return total, err
		}
		if len(msgs) == 0 {
			return total, nil
		}
		c.handOver(ctx, msgs, progress)
		total += len(msgs)
		minID = msgs[len(msgs)-1].GetID()
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// reconcileRecent brings the gap's edits and deletions of the chat's latest
// bridged messages (a page of them, up to minID) as far as Telegram's
// history shows them: a message edited after the account last had its
// updates is edited, and a bridged message missing from the history was
// deleted. Older messages are left as they are.
func (c *Client) reconcileRecent(ctx context.Context, chat catchUpChat, input tg.InputPeerClass, key networkid.PortalKey, minID int) {
	log := zerolog.Ctx(ctx)
	msgs, err := c.historyPage(ctx, &tg.MessagesGetHistoryRequest{Peer: input, OffsetID: minID + 1, Limit: maxHistoryPage}, 0)
	if err != nil {
		log.Warn().Err(err).Str("tg_peer", chat.peer.String()).Msg("Failed to check the chat's latest messages for edits and deletions")
		return
	}
	present := make(map[int]bool, len(msgs))
	oldest, from := 1, time.Unix(1, 0)
	for _, raw := range msgs {
		present[raw.GetID()] = true
		m, ok := raw.(*tg.Message)
		if !ok {
			continue
		}
		if chat.since > 0 && m.EditDate >= chat.since {
			c.handleMessage(ctx, m, true)
		}
	}
	if len(msgs) == maxHistoryPage {
		// A full page: the check goes back to its oldest message.
		oldest = msgs[0].GetID()
		if m, ok := msgs[0].(interface{ GetDate() int }); ok {
			from = time.Unix(int64(m.GetDate()), 0)
		}
	}
	rows, err := c.main.Bridge.DB.Message.GetMessagesBetweenTimeQuery(ctx, key, from.Add(-time.Second), clock.Or(c.main.Clock).Now().AddDate(1, 0, 0))
	if err != nil {
		log.Warn().Err(err).Msg("Failed to get the chat's latest bridged messages")
		return
	}
	box := tgid.MessageBox(chat.peer, c.userID)
	var gone []int
	for _, row := range rows {
		k, err := tgid.ParseMessageID(row.ID)
		if err != nil || k.Box != box || k.ID < oldest || k.ID > minID || present[k.ID] {
			continue
		}
		present[k.ID] = true // once per message, not per part
		gone = append(gone, k.ID)
	}
	if len(gone) > 0 {
		c.handleDeleteMessages(ctx, box, gone)
	}
}

// historyPage is one getHistory answer, the messages after minID, oldest
// first.
func (c *Client) historyPage(ctx context.Context, req *tg.MessagesGetHistoryRequest, minID int) ([]tg.MessageClass, error) {
	api := c.api.Load()
	if api == nil {
		return nil, ErrNotConnected
	}
	res, err := api.MessagesGetHistory(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("failed to get the chat's history from Telegram: %w", err)
	}
	page, ok := res.AsModified()
	if !ok {
		return nil, nil
	}
	chats := map[int64]*tg.Channel{}
	for _, ch := range page.GetChats() {
		if channel, ok := ch.(*tg.Channel); ok {
			chats[channel.ID] = channel
		}
	}
	c.rememberEntities(ctx, tg.Entities{Users: usersOf(page.GetUsers()), Channels: chats})
	msgs := slices.DeleteFunc(page.GetMessages(), func(m tg.MessageClass) bool {
		_, empty := m.(*tg.MessageEmpty)
		return empty || m.GetID() <= minID
	})
	slices.SortFunc(msgs, func(a, b tg.MessageClass) int { return a.GetID() - b.GetID() })
	return msgs, nil
}

// handOver hands messages of the history to the gate as live messages.
func (c *Client) handOver(ctx context.Context, msgs []tg.MessageClass, progress *remote.CatchUp) {
	for _, m := range msgs {
		if ctx.Err() != nil {
			return
		}
		c.handleMessage(ctx, m, false)
		progress.Add(ctx, 1)
	}
}
