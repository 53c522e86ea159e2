package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

const (
	putContactNameQuery = `
		INSERT INTO whatsapp_contacts (our_jid, their_jid, first_name, full_name) VALUES ($1, $2, $3, $4)
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET first_name=excluded.first_name, full_name=excluded.full_name`
	putRedactedPhoneQuery = `
		INSERT INTO whatsapp_contacts (our_jid, their_jid, redacted_phone) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET redacted_phone=excluded.redacted_phone`
	putPushNameQuery = `
		INSERT INTO whatsapp_contacts (our_jid, their_jid, push_name) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET push_name=excluded.push_name`
	putBusinessNameQuery = `
		INSERT INTO whatsapp_contacts (our_jid, their_jid, business_name) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, their_jid) DO UPDATE SET business_name=excluded.business_name`
	getContactQuery = `
		SELECT first_name, full_name, push_name, business_name, redacted_phone
		FROM whatsapp_contacts WHERE our_jid=$1 AND their_jid=$2`
	getAllContactsQuery = `
		SELECT their_jid, first_name, full_name, push_name, business_name, redacted_phone
		FROM whatsapp_contacts WHERE our_jid=$1`

	putChatSettingQuery = `
		INSERT INTO whatsapp_chat_settings (our_jid, chat_jid, %[1]s) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, chat_jid) DO UPDATE SET %[1]s=excluded.%[1]s`
	getChatSettingsQuery = `SELECT muted_until, pinned, archived FROM whatsapp_chat_settings WHERE our_jid=$1 AND chat_jid=$2`
)

// getContact reads a contact through the cache; contactMu must be held.
func (s *deviceStore) getContact(ctx context.Context, user types.JID) (*types.ContactInfo, error) {
	if cached, ok := s.contactCache[user]; ok {
		return cached, nil
	}
	var first, full, push, business, redacted sql.NullString
	err := s.db.QueryRow(ctx, getContactQuery, s.jid, user.String()).Scan(&first, &full, &push, &business, &redacted)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	info := &types.ContactInfo{
		Found:         err == nil,
		FirstName:     first.String,
		FullName:      full.String,
		PushName:      push.String,
		BusinessName:  business.String,
		RedactedPhone: redacted.String,
	}
	s.contactCache[user] = info
	return info, nil
}

func (s *deviceStore) putName(ctx context.Context, query string, user types.JID, field func(*types.ContactInfo) *string, name string) (bool, string, error) {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	cached, err := s.getContact(ctx, user)
	if err != nil {
		return false, "", err
	}
	current := field(cached)
	if *current == name {
		return false, "", nil
	}
	if _, err = s.db.Exec(ctx, query, s.jid, user.String(), name); err != nil {
		return false, "", err
	}
	previous := *current
	*current = name
	cached.Found = true
	return true, previous, nil
}

// PutPushName implements store.ContactStore.
func (s *deviceStore) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	return s.putName(ctx, putPushNameQuery, user, func(c *types.ContactInfo) *string { return &c.PushName }, pushName)
}

// PutBusinessName implements store.ContactStore.
func (s *deviceStore) PutBusinessName(ctx context.Context, user types.JID, businessName string) (bool, string, error) {
	return s.putName(ctx, putBusinessNameQuery, user, func(c *types.ContactInfo) *string { return &c.BusinessName }, businessName)
}

// PutContactName implements store.ContactStore. whatsmeow passes the first
// name before the full name (appstate.go), whatever the interface's parameter
// names say.
func (s *deviceStore) PutContactName(ctx context.Context, user types.JID, firstName, fullName string) error {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	cached, err := s.getContact(ctx, user)
	if err != nil {
		return err
	}
	if cached.FirstName == firstName && cached.FullName == fullName {
		return nil
	}
	if _, err = s.db.Exec(ctx, putContactNameQuery, s.jid, user.String(), firstName, fullName); err != nil {
		return err
	}
	cached.FirstName, cached.FullName, cached.Found = firstName, fullName, true
	return nil
}

// PutAllContactNames implements store.ContactStore.
func (s *deviceStore) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	if len(contacts) == 0 {
		return nil
	}
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, c := range contacts {
			if _, err := s.db.Exec(ctx, putContactNameQuery, s.jid, c.JID.String(), c.FirstName, c.FullName); err != nil {
				return fmt.Errorf("failed to store contact: %w", err)
			}
		}
		return nil
	})
	s.contactMu.Lock()
	clear(s.contactCache)
	s.contactMu.Unlock()
	return err
}

// PutManyRedactedPhones implements store.ContactStore.
func (s *deviceStore) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, e := range entries {
			if _, err := s.db.Exec(ctx, putRedactedPhoneQuery, s.jid, e.JID.String(), e.RedactedPhone); err != nil {
				return fmt.Errorf("failed to store redacted phone: %w", err)
			}
		}
		return nil
	})
	s.contactMu.Lock()
	for _, e := range entries {
		delete(s.contactCache, e.JID)
	}
	s.contactMu.Unlock()
	return err
}

// GetContact implements store.ContactStore.
func (s *deviceStore) GetContact(ctx context.Context, user types.JID) (types.ContactInfo, error) {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	info, err := s.getContact(ctx, user)
	if err != nil {
		return types.ContactInfo{}, err
	}
	return *info, nil
}

// GetAllContacts implements store.ContactStore.
func (s *deviceStore) GetAllContacts(ctx context.Context) (map[types.JID]types.ContactInfo, error) {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	rows, err := s.db.Query(ctx, getAllContactsQuery, s.jid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[types.JID]types.ContactInfo)
	for rows.Next() {
		var jidStr string
		var first, full, push, business, redacted sql.NullString
		if err = rows.Scan(&jidStr, &first, &full, &push, &business, &redacted); err != nil {
			return nil, fmt.Errorf("failed to scan contact: %w", err)
		}
		jid, err := types.ParseJID(jidStr)
		if err != nil {
			continue
		}
		info := types.ContactInfo{
			Found: true, FirstName: first.String, FullName: full.String, PushName: push.String,
			BusinessName: business.String, RedactedPhone: redacted.String,
		}
		out[jid] = info
		s.contactCache[jid] = &info
	}
	return out, rows.Err()
}

// PutMutedUntil implements store.ChatSettingsStore (-1 stores "forever").
func (s *deviceStore) PutMutedUntil(ctx context.Context, chat types.JID, mutedUntil time.Time) error {
	var val int64
	if mutedUntil.Equal(store.MutedForever) {
		val = -1
	} else if !mutedUntil.IsZero() {
		val = mutedUntil.Unix()
	}
	_, err := s.db.Exec(ctx, fmt.Sprintf(putChatSettingQuery, "muted_until"), s.jid, chat.String(), val)
	return err
}

// PutPinned implements store.ChatSettingsStore.
func (s *deviceStore) PutPinned(ctx context.Context, chat types.JID, pinned bool) error {
	_, err := s.db.Exec(ctx, fmt.Sprintf(putChatSettingQuery, "pinned"), s.jid, chat.String(), pinned)
	return err
}

// PutArchived implements store.ChatSettingsStore.
func (s *deviceStore) PutArchived(ctx context.Context, chat types.JID, archived bool) error {
	_, err := s.db.Exec(ctx, fmt.Sprintf(putChatSettingQuery, "archived"), s.jid, chat.String(), archived)
	return err
}

// GetChatSettings implements store.ChatSettingsStore.
func (s *deviceStore) GetChatSettings(ctx context.Context, chat types.JID) (settings types.LocalChatSettings, err error) {
	var muted int64
	err = s.db.QueryRow(ctx, getChatSettingsQuery, s.jid, chat.String()).Scan(&muted, &settings.Pinned, &settings.Archived)
	if errors.Is(err, sql.ErrNoRows) {
		return settings, nil
	} else if err != nil {
		return settings, err
	}
	settings.Found = true
	if muted < 0 {
		settings.MutedUntil = store.MutedForever
	} else if muted > 0 {
		settings.MutedUntil = time.Unix(muted, 0)
	}
	return settings, nil
}
