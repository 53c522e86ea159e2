package whatsapp

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// The history WhatsApp sends at linking waits in two tables (upgrade
// 02-history.sql) until the chat's portal is backfilled from it:
//
//   - whatsapp_history_message: per login and chat, the latest messages
//     (at most backfill.initial_messages, none older than max_age_days),
//     as the WebMessageInfo protobuf;
//   - whatsapp_history_chat: per login and chat, its last activity, which
//     chooses the chats that get a portal at login.
//
// A chat's messages are deleted once its portal was backfilled from them;
// a login's rows go with the login.

// maxHistoryChats caps the chats remembered per login.
const maxHistoryChats = 5000

const (
	putHistoryMessageQuery = `
		INSERT INTO whatsapp_history_message (bridge_id, login_id, chat_jid, message_id, timestamp, data, unread)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (bridge_id, login_id, chat_jid, message_id) DO NOTHING`
	capHistoryMessagesQuery = `
		DELETE FROM whatsapp_history_message
		WHERE bridge_id=$1 AND login_id=$2 AND chat_jid=$3 AND (timestamp < $4 OR message_id NOT IN (
			SELECT message_id FROM whatsapp_history_message
			WHERE bridge_id=$1 AND login_id=$2 AND chat_jid=$3
			ORDER BY timestamp DESC, message_id DESC LIMIT $5))`
	getHistoryMessagesQuery = `
		SELECT message_id, timestamp, data, unread FROM whatsapp_history_message
		WHERE bridge_id=$1 AND login_id=$2 AND chat_jid=$3 AND timestamp > $4
		ORDER BY timestamp ASC, message_id ASC`
	deleteHistoryMessagesQuery = `
		DELETE FROM whatsapp_history_message WHERE bridge_id=$1 AND login_id=$2 AND chat_jid=$3 AND timestamp <= $4`
	putHistoryChatQuery = `
		INSERT INTO whatsapp_history_chat (bridge_id, login_id, chat_jid, last_activity) VALUES ($1, $2, $3, $4)
		ON CONFLICT (bridge_id, login_id, chat_jid) DO UPDATE SET last_activity=excluded.last_activity
		WHERE whatsapp_history_chat.last_activity < excluded.last_activity`
	capHistoryChatsQuery = `
		DELETE FROM whatsapp_history_chat WHERE bridge_id=$1 AND login_id=$2 AND chat_jid NOT IN (
			SELECT chat_jid FROM whatsapp_history_chat WHERE bridge_id=$1 AND login_id=$2
			ORDER BY last_activity DESC, chat_jid ASC LIMIT $3)`
	recentHistoryChatsQuery = `
		SELECT chat_jid FROM whatsapp_history_chat WHERE bridge_id=$1 AND login_id=$2
		ORDER BY last_activity DESC, chat_jid ASC LIMIT $3`
	deleteLoginHistoryMessagesQuery = `DELETE FROM whatsapp_history_message WHERE bridge_id=$1 AND login_id=$2`
	deleteLoginHistoryChatsQuery    = `DELETE FROM whatsapp_history_chat WHERE bridge_id=$1 AND login_id=$2`
)

// historyStore is the history of the logins of one bridge.
type historyStore struct {
	db       *dbutil.Database
	bridgeID networkid.BridgeID
}

// storedHistory is one stored message of a chat's history.
type storedHistory struct {
	ID        string
	Timestamp time.Time
	Info      *waWeb.WebMessageInfo
	// Unread: the phone had not read it when it sent the history.
	Unread bool
}

// put stores a chat's messages, then keeps its latest max (none before
// cutoff, when set).
func (s *historyStore) put(ctx context.Context, login networkid.UserLoginID, chat string, msgs []storedHistory, limit int, cutoff time.Time) error {
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, m := range msgs {
			raw, err := proto.Marshal(m.Info)
			if err != nil {
				return fmt.Errorf("failed to marshal a history message: %w", err)
			}
			if _, err = s.db.Exec(ctx, putHistoryMessageQuery, s.bridgeID, login, chat, m.ID, m.Timestamp.UnixMilli(),
				base64.StdEncoding.EncodeToString(raw), m.Unread); err != nil {
				return fmt.Errorf("failed to store a history message: %w", err)
			}
		}
		var oldest int64
		if !cutoff.IsZero() {
			oldest = cutoff.UnixMilli()
		}
		if _, err := s.db.Exec(ctx, capHistoryMessagesQuery, s.bridgeID, login, chat, oldest, limit); err != nil {
			return fmt.Errorf("failed to trim a chat's history: %w", err)
		}
		return nil
	})
}

// touchChat records a chat's last activity (kept when it is older than
// what is known), keeping the maxHistoryChats most recent chats.
func (s *historyStore) touchChat(ctx context.Context, login networkid.UserLoginID, chat string, last time.Time) error {
	if _, err := s.db.Exec(ctx, putHistoryChatQuery, s.bridgeID, login, chat, last.UnixMilli()); err != nil {
		return fmt.Errorf("failed to store a chat's last activity: %w", err)
	}
	if _, err := s.db.Exec(ctx, capHistoryChatsQuery, s.bridgeID, login, maxHistoryChats); err != nil {
		return fmt.Errorf("failed to trim the chats of the history: %w", err)
	}
	return nil
}

// recentChats lists the n chats of the login with the latest activity.
func (s *historyStore) recentChats(ctx context.Context, login networkid.UserLoginID, n int) ([]string, error) {
	rows, err := s.db.Query(ctx, recentHistoryChatsQuery, s.bridgeID, login, n)
	if err != nil {
		return nil, fmt.Errorf("failed to list recent chats: %w", err)
	}
	chats, err := dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[string], err).AsList()
	if err != nil {
		return nil, fmt.Errorf("failed to list recent chats: %w", err)
	}
	return chats, nil
}

// messages lists a chat's stored messages after after, oldest first.
func (s *historyStore) messages(ctx context.Context, login networkid.UserLoginID, chat string, after time.Time) ([]storedHistory, error) {
	var since int64 = -1
	if !after.IsZero() {
		since = after.UnixMilli()
	}
	rows, err := s.db.Query(ctx, getHistoryMessagesQuery, s.bridgeID, login, chat, since)
	if err != nil {
		return nil, fmt.Errorf("failed to read a chat's history: %w", err)
	}
	defer rows.Close()
	var out []storedHistory
	for rows.Next() {
		var id, data string
		var ts int64
		var unread bool
		if err = rows.Scan(&id, &ts, &data, &unread); err != nil {
			return nil, fmt.Errorf("failed to read a chat's history: %w", err)
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			continue
		}
		info := &waWeb.WebMessageInfo{}
		if proto.Unmarshal(raw, info) != nil {
			continue
		}
		out = append(out, storedHistory{ID: id, Timestamp: time.UnixMilli(ts), Info: info, Unread: unread})
	}
	return out, rows.Err()
}

// forget deletes a chat's messages up to until (those replayed, and any
// older).
func (s *historyStore) forget(ctx context.Context, login networkid.UserLoginID, chat string, until time.Time) error {
	if _, err := s.db.Exec(ctx, deleteHistoryMessagesQuery, s.bridgeID, login, chat, until.UnixMilli()); err != nil {
		return fmt.Errorf("failed to delete a chat's replayed history: %w", err)
	}
	return nil
}

// forgetLogin deletes everything stored for a login.
func (s *historyStore) forgetLogin(ctx context.Context, login networkid.UserLoginID) error {
	for _, q := range []string{deleteLoginHistoryMessagesQuery, deleteLoginHistoryChatsQuery} {
		if _, err := s.db.Exec(ctx, q, s.bridgeID, login); err != nil {
			return fmt.Errorf("failed to delete a login's history: %w", err)
		}
	}
	return nil
}
