package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

// Basic groups. Telegram stores a basic-group message in every member's own
// message box, with a different ID per account. The portal is shared (no
// receiver). Every login records its copy of each message (basicstore.go)
// under the message's fingerprint (group, sender, date, text); one login
// bridges it, under its own box ID (telegram.u<self>.<id>):
//   - a message from a staff member whose login is here is bridged by that
//     login (the copy in the sender's own box): the other logins never race
//     it, and a message sent from Matrix, which the sending login does not
//     receive again, is not bridged back;
//   - any other message by the first login to claim its fingerprint.
// The copies map each account's ID to the bridged one and back, and
// persist: a restart does not bridge a message twice.

// basicCacheSize caps the cached basic-group titles and the deletions
// sent from Matrix.
const basicCacheSize = 8192

// basicFingerprint identifies a basic-group message across the members'
// boxes.
func basicFingerprint(chatID int64, msg *tg.Message) string {
	return basicFingerprintOf(chatID, basicSenderOf(msg), msg.Date, msg.Message)
}

func basicFingerprintOf(chatID, from int64, date int, text string) string {
	sum := sha256.Sum256([]byte(text))
	return strconv.FormatInt(chatID, 10) + "/" + strconv.FormatInt(from, 10) + "/" +
		strconv.Itoa(date) + "/" + hex.EncodeToString(sum[:8])
}

func basicSenderOf(msg *tg.Message) int64 {
	if p, ok := msg.FromID.(*tg.PeerUser); ok {
		return p.UserID
	}
	return 0
}

// liveStaff tells whether a Telegram user is a staff member logged in
// here (connected or not): that login bridges the user's messages.
func (c *Client) liveStaff(userID int64) bool {
	if userID == 0 || userID == c.userID {
		return false
	}
	login := c.main.Bridge.GetCachedUserLoginByID(tgid.MakeUserLoginID(userID))
	return login != nil && login.Client != nil && login.Client.IsLoggedIn()
}

// claimBasicMessage records this account's copy of a new basic-group
// message and tells whether this login bridges it, under id.
func (c *Client) claimBasicMessage(ctx context.Context, chatID int64, msg *tg.Message, id networkid.MessageID) bool {
	log := zerolog.Ctx(ctx)
	now := clock.Or(c.main.Clock).Now()
	fp, err := c.main.Store.RecordBasicCopy(ctx, c.userID, msg.ID, chatID, basicFingerprint(chatID, msg), now)
	if err != nil {
		// Better twice than never.
		log.Err(err).Int("tg_message_id", msg.ID).Msg("Failed to record a basic group message")
		return true
	}
	c.main.notifyBasicCopied()
	if c.liveStaff(basicSenderOf(msg)) {
		return false
	}
	canonical, fromMatrix, err := c.main.Store.ClaimBasicMessage(ctx, chatID, fp, id, false, now)
	if err != nil {
		log.Err(err).Int("tg_message_id", msg.ID).Msg("Failed to claim a basic group message")
		return true
	}
	c.pruneBasicSometimes(ctx, now)
	return canonical == id && !fromMatrix
}

// recordBasicSent records a message this login sent to a basic group from
// Matrix (its ID id in the account's box), as bridged under that ID.
func (c *Client) recordBasicSent(ctx context.Context, chatID int64, boxID, date int, text string) {
	now := clock.Or(c.main.Clock).Now()
	fp, err := c.main.Store.RecordBasicCopy(ctx, c.userID, boxID, chatID, basicFingerprintOf(chatID, c.userID, date, text), now)
	if err == nil {
		id := c.messageID(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, boxID)
		_, _, err = c.main.Store.ClaimBasicMessage(ctx, chatID, fp, id, true, now)
	}
	c.main.notifyBasicCopied()
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Int("tg_message_id", boxID).Msg("Failed to record a message sent to a basic group")
	}
}

func (c *Client) pruneBasicSometimes(ctx context.Context, now time.Time) {
	c.main.basicMu.Lock()
	c.main.basicClaims++
	due := c.main.basicClaims%basicPruneEvery == 0
	c.main.basicMu.Unlock()
	if due {
		if err := c.main.Store.PruneBasic(ctx, now); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to prune basic group messages")
		}
	}
}

// basicCanonical returns the ID under which this account's basic-group
// message boxID was bridged, and its group; false when it is unknown.
func (c *Client) basicCanonical(ctx context.Context, boxID int) (networkid.MessageID, int64, bool) {
	id, chatID, err := c.main.Store.BasicCanonical(ctx, c.userID, boxID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Int("tg_message_id", boxID).Msg("Failed to look up a basic group message")
	}
	return id, chatID, id != ""
}

// rememberBasicChats caches the titles of basic groups seen in updates.
func (c *Client) rememberBasicChats(chats map[int64]*tg.Chat) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	for id, ch := range chats {
		c.main.basicTitles.Put(id, ch.Title)
	}
	c.main.basicMu.Unlock()
	c.rememberMigrations(chats)
	c.main.basicMu.Lock()
}

// basicChat describes a basic group from the caches.
func (c *Client) basicChat(id int64) remote.Chat {
	chat := remote.Chat{IsGroup: true}
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	if title, ok := c.main.basicTitles.Get(id); ok {
		chat.Name = title
	}
	return chat
}

// basicChatInfo describes a basic group: title, about and its members
// (at most 200 on Telegram: all synced).
func (c *Client) basicChatInfo(ctx context.Context, chatID int64) (*bridgev2.ChatInfo, error) {
	full, err := callWhenConnected(ctx, c, "get basic group", func(ctx context.Context, api *tg.Client) (*tg.MessagesChatFull, error) {
		return api.MessagesGetFullChat(ctx, chatID)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to get telegram basic group: %w", err)
	}
	info := &bridgev2.ChatInfo{CanBackfill: c.canBackfill(tgid.Peer{Type: tgid.PeerChat, ID: chatID})}
	roomType := database.RoomTypeDefault
	info.Type = &roomType
	for _, ch := range full.Chats {
		if v, ok := ch.(*tg.Chat); ok && v.ID == chatID {
			title := v.Title
			info.Name = &title
			c.rememberBasicChats(map[int64]*tg.Chat{v.ID: v})
		}
	}
	members := &bridgev2.ChatMemberList{IsFull: true, MemberMap: bridgev2.ChatMemberMap{}}
	if cf, ok := full.FullChat.(*tg.ChatFull); ok {
		about := cf.About
		info.Topic = &about
		photo, _ := cf.GetChatPhoto()
		info.Avatar = c.photoAvatar(photo)
		if parts, ok := cf.Participants.(*tg.ChatParticipants); ok {
			for _, p := range parts.Participants {
				uid := p.GetUserID()
				sender := c.memberSender(uid)
				m := bridgev2.ChatMember{EventSender: sender, Membership: event.MembershipJoin}
				if _, creator := p.(*tg.ChatParticipantCreator); creator {
					pl := powerCreator
					m.PowerLevel = &pl
				} else if _, admin := p.(*tg.ChatParticipantAdmin); admin {
					pl := powerAdmin
					m.PowerLevel = &pl
				}
				members.MemberMap[sender.Sender] = m
			}
		}
	}
	info.Members = members
	return info, nil
}
