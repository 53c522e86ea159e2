package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
)

// Basic groups. Telegram stores a basic-group message in every member's own
// message box, with a different ID per account. The portal is shared (no
// receiver); the first login that sees a message bridges it under its own
// box ID (telegram.u<self>.<id>). The other logins recognise the same
// message by (chat, sender, date, text) in a bounded connector-wide cache
// and record their own ID as an alias of the bridged one, so that their
// edits map to the same Matrix event.

// basicSeenCacheSize caps the remembered basic-group messages and aliases.
const basicSeenCacheSize = 8192

// basicFingerprint identifies a basic-group message across the members'
// boxes.
func basicFingerprint(chatID int64, msg *tg.Message) string {
	from := int64(0)
	if p, ok := msg.FromID.(*tg.PeerUser); ok {
		from = p.UserID
	}
	sum := sha256.Sum256([]byte(msg.Message))
	return strconv.FormatInt(chatID, 10) + "/" + strconv.FormatInt(from, 10) + "/" +
		strconv.Itoa(msg.Date) + "/" + hex.EncodeToString(sum[:8])
}

// claimBasicMessage tells whether this login is the first to see a new
// basic-group message (and must bridge it under id); otherwise it records id
// as an alias of the message another login bridged.
func (c *Client) claimBasicMessage(chatID int64, msg *tg.Message, id networkid.MessageID) bool {
	key := basicFingerprint(chatID, msg)
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	if first, ok := c.main.basicSeen.Get(key); ok {
		if first != id {
			c.main.basicAlias.Put(id, first)
		}
		return false
	}
	c.main.basicSeen.Put(key, id)
	return true
}

// basicCanonical returns the ID under which a basic-group message was
// bridged, given this login's own ID for it.
func (c *Client) basicCanonical(id networkid.MessageID) networkid.MessageID {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	if first, ok := c.main.basicAlias.Get(id); ok {
		return first
	}
	return id
}

// rememberBasicChats caches the titles of basic groups seen in updates.
func (c *Client) rememberBasicChats(chats map[int64]*tg.Chat) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	for id, ch := range chats {
		c.main.basicTitles.Put(id, ch.Title)
	}
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
	info := &bridgev2.ChatInfo{CanBackfill: false}
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
