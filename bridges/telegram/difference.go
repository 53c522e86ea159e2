package telegram

import (
	"context"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
)

// Caps of the per-account caches of the conversation features.
const (
	customEmojiCacheSize = 1000
	sentEditsCacheSize   = 1000
	// pendingReactionsCacheSize bounds the reactions waiting for their
	// message (reactions to messages never bridged end there too).
	pendingReactionsCacheSize = 100
	// deliveredCacheSize bounds the memory of messages the gate took.
	deliveredCacheSize = 2000
)

// differenceAPI is the API the updates manager runs on. gotd's manager
// discards the edits and deletions (and read history) that come in an
// updates.getDifference answer, after a gap or when catching up at start:
// those made while the gateway was away would be lost. differenceAPI takes
// them out of the answer and hands them to the handler itself, before the
// answer's new messages (which it hands over too, to keep that order, the
// one gotd's manager uses); the manager then only moves the stored state
// past them.
//
// When Telegram answers that the gap is too long (differenceTooLong,
// channelDifferenceTooLong), differenceAPI records the catch-up to do
// (tooLong, channelTooLong) before the manager stores the new state: the
// manager's OnTooLong then fetches the chats' history, and a restart before
// it ends does it again.
type differenceAPI struct {
	*tg.Client
	handler telegram.UpdateHandler
	// tooLong records a gap too long to list: since when (the state's
	// date) and how many events (pts) it spans.
	tooLong func(ctx context.Context, since, total int) error
	// channelTooLong records a channel whose gap is too long.
	channelTooLong func(ctx context.Context, channelID int64) error
}

// UpdatesGetChannelDifference implements updates.API.
func (d *differenceAPI) UpdatesGetChannelDifference(ctx context.Context, req *tg.UpdatesGetChannelDifferenceRequest) (tg.UpdatesChannelDifferenceClass, error) {
	diff, err := d.Client.UpdatesGetChannelDifference(ctx, req)
	if err != nil {
		return diff, err
	}
	if _, ok := diff.(*tg.UpdatesChannelDifferenceTooLong); ok && d.channelTooLong != nil {
		if input, ok := req.Channel.(*tg.InputChannel); ok {
			if err := d.channelTooLong(ctx, input.ChannelID); err != nil {
				return nil, err
			}
		}
	}
	return diff, nil
}

// UpdatesGetDifference implements updates.API.
func (d *differenceAPI) UpdatesGetDifference(ctx context.Context, req *tg.UpdatesGetDifferenceRequest) (tg.UpdatesDifferenceClass, error) {
	diff, err := d.Client.UpdatesGetDifference(ctx, req)
	if err != nil {
		return diff, err
	}
	switch v := diff.(type) {
	case *tg.UpdatesDifferenceTooLong:
		if d.tooLong != nil {
			if err := d.tooLong(ctx, req.Date, max(v.Pts-req.Pts, 0)); err != nil {
				return nil, err
			}
		}
	case *tg.UpdatesDifference:
		v.NewMessages, v.OtherUpdates, err = d.takeOver(ctx, v.NewMessages, v.OtherUpdates, v.Users, v.Chats)
	case *tg.UpdatesDifferenceSlice:
		v.NewMessages, v.OtherUpdates, err = d.takeOver(ctx, v.NewMessages, v.OtherUpdates, v.Users, v.Chats)
	}
	return diff, err
}

// takeOver hands the new messages and the updates the manager would lose
// to the handler, the other updates first, and returns what is left for the manager.
func (d *differenceAPI) takeOver(ctx context.Context, msgs []tg.MessageClass, others []tg.UpdateClass, users []tg.UserClass, chats []tg.ChatClass) ([]tg.MessageClass, []tg.UpdateClass, error) {
	var mine, rest []tg.UpdateClass
	for _, u := range others {
		switch u.(type) {
		case *tg.UpdateEditMessage, *tg.UpdateDeleteMessages, *tg.UpdateReadHistoryInbox, *tg.UpdateReadHistoryOutbox:
			mine = append(mine, u)
		default:
			rest = append(rest, u)
		}
	}
	if len(mine) == 0 {
		return msgs, others, nil
	}
	fresh := map[int]bool{}
	for _, m := range msgs {
		fresh[m.GetID()] = true
	}
	list := make([]tg.UpdateClass, 0, len(msgs)+len(mine))
	for _, u := range mine {
		// A new message of the same answer is already in its edited form.
		if e, ok := u.(*tg.UpdateEditMessage); ok && fresh[e.Message.GetID()] {
			continue
		}
		list = append(list, u)
	}
	for _, m := range msgs {
		list = append(list, &tg.UpdateNewMessage{Message: m})
	}
	err := d.handler.Handle(ctx, &tg.Updates{Updates: list, Users: users, Chats: chats})
	return nil, rest, err
}
