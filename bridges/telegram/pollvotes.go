package telegram

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
	"github.com/passerelle/passerelle/internal/lru"
)

// Poll votes: in a private chat Telegram shows the account the counts of
// each option and which ones it chose itself, so the contact's choice is
// the counts minus the account's own. It is bridged as an MSC3381 poll
// response from the contact's ghost when it changes.

// pollVoteCacheSize bounds the polls whose votes are tracked.
const pollVoteCacheSize = 1024

var (
	_ bridgev2.RemoteMessage = (*pollVoteEvent)(nil)
	_ remote.Described       = (*pollVoteEvent)(nil)
)

// pollVoteEvent is the contact's vote on a bridged poll.
type pollVoteEvent struct {
	*simplevent.Message[[]string]
	chat   remote.Chat
	sender remote.Identity
}

// RemoteChat implements remote.Described.
func (e *pollVoteEvent) RemoteChat() remote.Chat { return e.chat }

// RemoteSender implements remote.Described.
func (e *pollVoteEvent) RemoteSender() remote.Identity { return e.sender }

// pollVotes keeps, per poll, the contact's latest known choice and the
// choice last bridged. Telegram may hand poll updates to handlers out of
// order, so a handler fetches the current results (ticketed: a later
// fetch wins) and the conversion, which runs in the portal's order, bridges
// the latest choice when it differs from the last bridged one.
type pollVotes struct {
	mu     sync.Mutex
	polls  *lru.Cache[networkid.MessageID, *pollVoteState]
	ticket atomic.Int64
	seq    atomic.Int64
}

type pollVoteState struct {
	ticket  int64
	latest  string // comma-separated option IDs
	bridged string
}

func (c *Client) handlePollUpdate(ctx context.Context, u *tg.UpdateMessagePoll) {
	peerUser, ok := u.Peer.(*tg.PeerUser)
	if !ok || u.MsgID == 0 || peerUser.UserID == c.userID {
		return
	}
	peer := tgid.Peer{Type: tgid.PeerUser, ID: peerUser.UserID}
	pollID := c.messageID(peer, u.MsgID)
	ticket := c.votes.ticket.Add(1)
	results := u.Results
	if fresh, err := c.currentPollResults(ctx, u.MsgID); err == nil {
		results = fresh
	} else {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to fetch poll results, using the update's")
	}
	answers, ok := tgmedia.ContactVote(results)
	if !ok {
		return
	}
	choice := strings.Join(answers, ",")
	c.votes.mu.Lock()
	st, seen := c.votes.polls.Get(pollID)
	if !seen {
		st = &pollVoteState{}
		c.votes.polls.Put(pollID, st)
	}
	changed := ticket > st.ticket && choice != st.latest
	if ticket > st.ticket {
		st.ticket, st.latest = ticket, choice
	}
	c.votes.mu.Unlock()
	if !changed {
		return
	}
	evt := &pollVoteEvent{
		Message: &simplevent.Message[[]string]{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventMessage,
				PortalKey: tgid.MakePortalKey(peer, c.login.ID),
				Sender:    bridgev2.EventSender{Sender: tgid.MakeUserID(peer.ID)},
				Timestamp: time.Now(),
				LogContext: func(lc zerolog.Context) zerolog.Context {
					return lc.Int("tg_poll_message_id", u.MsgID).Str("tg_peer", peer.String())
				},
			},
			Data:               answers,
			ID:                 networkid.MessageID(fmt.Sprintf("%s.vote%d", pollID, c.votes.seq.Add(1))),
			ConvertMessageFunc: c.pollVoteConverter(pollID),
		},
		chat:   chatOf(peer),
		sender: c.cachedIdentity(peer.ID),
	}
	if res := c.deliver(ctx, evt); !res.Success && !res.Ignored {
		zerolog.Ctx(ctx).Warn().Err(res.Error).Int("tg_poll_message_id", u.MsgID).Msg("Failed to bridge a poll vote")
	}
}

// currentPollResults fetches a poll message's results as they are now.
func (c *Client) currentPollResults(ctx context.Context, msgID int) (tg.PollResults, error) {
	api := c.api.Load()
	if api == nil {
		return tg.PollResults{}, ErrNotConnected
	}
	res, err := api.MessagesGetMessages(ctx, []tg.InputMessageClass{&tg.InputMessageID{ID: msgID}})
	if err != nil {
		return tg.PollResults{}, err
	}
	if modified, ok := res.AsModified(); ok {
		for _, m := range modified.GetMessages() {
			if msg, ok := m.(*tg.Message); ok && msg.ID == msgID {
				if poll, ok := msg.Media.(*tg.MessageMediaPoll); ok {
					return poll.Results, nil
				}
			}
		}
	}
	return tg.PollResults{}, fmt.Errorf("poll message %d not found", msgID)
}

// pollVoteConverter makes the poll response relating to the bridged poll.
func (c *Client) pollVoteConverter(pollID networkid.MessageID) func(context.Context, *bridgev2.Portal, bridgev2.MatrixAPI, []string) (*bridgev2.ConvertedMessage, error) {
	return func(ctx context.Context, portal *bridgev2.Portal, _ bridgev2.MatrixAPI, _ []string) (*bridgev2.ConvertedMessage, error) {
		// The latest choice, not the event's: events may have been queued
		// in another order than the votes were made.
		c.votes.mu.Lock()
		st, ok := c.votes.polls.Get(pollID)
		var choice string
		if ok {
			choice = st.latest
			if choice == st.bridged {
				ok = false
			} else {
				st.bridged = choice
			}
		}
		c.votes.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("%w: poll vote already bridged", bridgev2.ErrIgnoringRemoteEvent)
		}
		answers := []string{}
		if choice != "" {
			answers = strings.Split(choice, ",")
		}
		start, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.login.ID, pollID)
		if err != nil {
			return nil, fmt.Errorf("failed to find the poll: %w", err)
		} else if start == nil {
			return nil, fmt.Errorf("%w: vote on a poll that was not bridged", bridgev2.ErrIgnoringRemoteEvent)
		}
		return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
			Type:    event.EventUnstablePollResponse,
			Content: &event.MessageEventContent{RelatesTo: &event.RelatesTo{Type: event.RelReference, EventID: start.MXID}},
			Extra: map[string]any{
				"org.matrix.msc3381.poll.response": map[string]any{"answers": answers},
			},
		}}}, nil
	}
}
