package wastore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"go.mau.fi/util/dbutil"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

const (
	putMsgSecretQuery = `
		INSERT INTO whatsapp_message_secrets (our_jid, chat_jid, sender_jid, message_id, key) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (our_jid, chat_jid, sender_jid, message_id) DO NOTHING`
	getMsgSecretQuery = `
		SELECT key, sender_jid FROM whatsapp_message_secrets
		WHERE our_jid=$1 AND chat_jid IN ($2, $3) AND sender_jid IN ($4, $5) AND message_id=$6`

	putPrivacyTokenQuery = `
		INSERT INTO whatsapp_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET token=excluded.token, timestamp=excluded.timestamp`
	getPrivacyTokenQuery = `
		SELECT token, timestamp FROM whatsapp_privacy_tokens
		WHERE our_jid=$1 AND their_jid IN ($2, $3) ORDER BY timestamp DESC LIMIT 1`

	getBufferedEventQuery = `
		SELECT plaintext, server_timestamp, insert_timestamp FROM whatsapp_event_buffer
		WHERE our_jid=$1 AND ciphertext_hash=$2`
	putBufferedEventQuery = `
		INSERT INTO whatsapp_event_buffer (our_jid, ciphertext_hash, plaintext, server_timestamp, insert_timestamp)
		VALUES ($1, $2, $3, $4, $5)`
	clearBufferedEventPlaintextQuery = `UPDATE whatsapp_event_buffer SET plaintext=NULL WHERE our_jid=$1 AND ciphertext_hash=$2`
	deleteOldBufferedHashesQuery     = `DELETE FROM whatsapp_event_buffer WHERE our_jid=$1 AND insert_timestamp < $2`
)

// altJID returns the other form (LID or phone number) of a non-AD JID, or
// the JID itself when no mapping is known.
func (s *deviceStore) altJID(ctx context.Context, jid types.JID) string {
	var alt types.JID
	var err error
	switch jid.Server {
	case types.HiddenUserServer:
		alt, err = s.c.LIDMap.GetPNForLID(ctx, jid)
	case types.DefaultUserServer:
		alt, err = s.c.LIDMap.GetLIDForPN(ctx, jid)
	}
	if err != nil || alt.IsEmpty() {
		return jid.String()
	}
	return alt.ToNonAD().String()
}

// PutMessageSecrets implements store.MsgSecretStore.
func (s *deviceStore) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	if len(inserts) == 0 {
		return nil
	}
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, in := range inserts {
			if err := s.PutMessageSecret(ctx, in.Chat, in.Sender, in.ID, in.Secret); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutMessageSecret implements store.MsgSecretStore.
func (s *deviceStore) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	_, err := s.db.Exec(ctx, putMsgSecretQuery, s.jid, chat.ToNonAD().String(), sender.ToNonAD().String(), id, secret)
	return err
}

// GetMessageSecret implements store.MsgSecretStore: chat and sender match in
// either their LID or their phone-number form.
func (s *deviceStore) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	var secret []byte
	var realSender string
	err := s.db.QueryRow(ctx, getMsgSecretQuery, s.jid,
		chat.String(), s.altJID(ctx, chat), sender.String(), s.altJID(ctx, sender), id,
	).Scan(&secret, &realSender)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, types.EmptyJID, nil
	} else if err != nil {
		return nil, types.EmptyJID, err
	}
	parsed, _ := types.ParseJID(realSender)
	return secret, parsed, nil
}

// PutPrivacyTokens implements store.PrivacyTokenStore.
func (s *deviceStore) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	if len(tokens) == 0 {
		return nil
	}
	defer s.c.tokens.invalidate() // after the write, failed or not
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, t := range tokens {
			if _, err := s.db.Exec(ctx, putPrivacyTokenQuery, s.jid, t.User.ToNonAD().String(), t.Token, t.Timestamp.Unix()); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetPrivacyToken implements store.PrivacyTokenStore; nil if none. The
// answers are cached (see tokens.go).
func (s *deviceStore) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	token := store.PrivacyToken{User: user.ToNonAD()}
	key := tokenKey{our: s.jid, user: token.User.String(), alt: s.altJID(ctx, token.User)}
	cached, ok, gen := s.c.tokens.get(key)
	if ok {
		return cached, nil
	}
	var ts int64
	err := s.db.QueryRow(ctx, getPrivacyTokenQuery, s.jid, key.user, key.alt).Scan(&token.Token, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		s.c.tokens.put(key, nil, gen)
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	token.Timestamp = time.Unix(ts, 0)
	s.c.tokens.put(key, &token, gen)
	return &token, nil
}

// GetBufferedEvent implements store.EventBuffer; nil if the hash is unknown.
// A plaintext whose clear waits (see clears.go) is answered as cleared.
func (s *deviceStore) GetBufferedEvent(ctx context.Context, hash [32]byte) (*store.BufferedEvent, error) {
	var buf store.BufferedEvent
	var serverTS, insertTS int64
	err := s.db.QueryRow(ctx, getBufferedEventQuery, s.jid, hash[:]).Scan(&buf.Plaintext, &serverTS, &insertTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	buf.ServerTime = time.Unix(serverTS, 0)
	buf.InsertTime = time.UnixMilli(insertTS)
	if s.c.clears.waiting(clearKey{s.jid, hash}) {
		buf.Plaintext = nil
	}
	return &buf, nil
}

// PutBufferedEvent implements store.EventBuffer.
func (s *deviceStore) PutBufferedEvent(ctx context.Context, hash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	_, err := s.db.Exec(ctx, putBufferedEventQuery, s.jid, hash[:], plaintext, serverTimestamp.Unix(), time.Now().UnixMilli())
	return err
}

// DoDecryptionTxn implements store.EventBuffer: decryption and the buffered
// plaintext are committed together, and the session and identity written
// reach the device's cache once they are (signalcache.go).
func (s *deviceStore) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	ctx = context.WithValue(ctx, dbutil.ContextKeyDoTxnCallerSkip, 3)
	return s.txn(ctx, fn)
}

// ClearBufferedEventPlaintext implements store.EventBuffer: the clear is
// written with others, shortly (see clears.go).
func (s *deviceStore) ClearBufferedEventPlaintext(ctx context.Context, hash [32]byte) error {
	return s.c.clears.add(ctx, clearKey{s.jid, hash})
}

// DeleteOldBufferedHashes implements store.EventBuffer: WhatsApp keeps
// undelivered events for 14 days, so older hashes are no longer needed.
func (s *deviceStore) DeleteOldBufferedHashes(ctx context.Context) error {
	_, err := s.db.Exec(ctx, deleteOldBufferedHashesQuery, s.jid, time.Now().Add(-14*24*time.Hour).UnixMilli())
	return err
}
