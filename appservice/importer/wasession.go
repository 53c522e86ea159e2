package importer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
)

// mautrix-whatsapp keeps its linked devices in whatsmeow's sqlstore tables
// (whatsmeow_*), next to bridgev2's. The import reads them with SQL (whatsmeow's
// sqlstore package does not build against the go.mau.fi/util that mautrix-go
// pins, see wastore) and writes each device through Passerelle's wastore, so
// that the gateway connects as the same linked device: no new pairing.

// waStoreVersionTable is sqlstore's version table.
const waStoreVersionTable = "whatsmeow_version"

// waStoreSchema is the sqlstore schema version this import reads: the one of
// the whatsmeow version Passerelle builds with. A newer database still
// compatible with it (its compat at most this) is read too.
const waStoreSchema = 11

// Why a WhatsApp login's device does not come along.
const (
	whyNoWAStore  = "the old database has no whatsmeow device tables; link the device again"
	whyNoWADevice = "the old database has no WhatsApp device for this login (logged out or unlinked); link the device again"
	whyBadWAMeta  = "the old login's metadata has no WhatsApp device number; link the device again"
)

// waSource is the old bridge's whatsmeow store, checked once per run.
type waSource struct {
	checked bool
	why     string // non-empty: no device can be carried, and why
	lidMaps bool   // the global LID map has been carried
}

// waOldLogin is the part of mautrix-whatsapp's login metadata the import
// reads: which device of the account (the login ID is the phone number).
type waOldLogin struct {
	DeviceID *uint16 `json:"wa_device_id"`
	LID      string  `json:"wa_lid"`
}

// waStoreProblem says why the source's whatsmeow tables cannot be read ("" if
// they can).
func (r *run) waStoreProblem(ctx context.Context) (string, error) {
	if r.wa.checked {
		return r.wa.why, nil
	}
	r.wa.checked = true
	db := r.src.db.Database
	for _, table := range []string{waStoreVersionTable, "whatsmeow_device"} {
		exists, err := db.TableExists(ctx, table)
		if err != nil {
			return "", fmt.Errorf("failed to check the old whatsmeow tables: %w", err)
		}
		if !exists {
			r.wa.why = whyNoWAStore
			return r.wa.why, nil
		}
	}
	var version, compat sql.NullInt64
	err := db.QueryRow(ctx, "SELECT version, compat FROM "+waStoreVersionTable+" LIMIT 1").Scan(&version, &compat)
	if errors.Is(err, sql.ErrNoRows) {
		r.wa.why = whyNoWAStore
		return r.wa.why, nil
	} else if err != nil {
		return "", fmt.Errorf("failed to read the whatsmeow schema version: %w", err)
	}
	switch {
	case version.Int64 == waStoreSchema:
	case version.Int64 > waStoreSchema && compat.Valid && compat.Int64 <= waStoreSchema:
	case version.Int64 > waStoreSchema:
		r.wa.why = fmt.Sprintf("the old whatsmeow device store has schema v%d, newer than the v%d this import reads; link the device again", version.Int64, waStoreSchema)
	default:
		r.wa.why = fmt.Sprintf("the old whatsmeow device store has schema v%d, older than the v%d this import reads (start the old bridge once with a current version to upgrade it, or link the device again)", version.Int64, waStoreSchema)
	}
	return r.wa.why, nil
}

// translateWhatsAppLogin finds the old login's linked device in the
// whatsmeow tables; the returned function carries it (keys, Signal sessions,
// app state, contacts) into Passerelle's device store.
func (r *run) translateWhatsAppLogin(ctx context.Context, old, out *database.UserLogin) (*database.UserLogin, func(context.Context) error, string) {
	why, err := r.waStoreProblem(ctx)
	if err != nil {
		r.log.Err(err).Msg("Failed to read the old WhatsApp device store")
		return nil, nil, whyUnknownFormat
	} else if why != "" {
		return nil, nil, why
	}
	var raw string
	if err = r.src.db.QueryRow(ctx, getLoginMetadataQuery, r.src.db.BridgeID, old.ID).Scan(&raw); err != nil {
		return nil, nil, whyUnknownFormat
	}
	var md waOldLogin
	if err = json.Unmarshal([]byte(raw), &md); err != nil {
		return nil, nil, whyUnknownFormat
	}
	if md.DeviceID == nil {
		return nil, nil, whyBadWAMeta
	}
	jid := types.JID{User: string(old.ID), Device: *md.DeviceID, Server: types.DefaultUserServer}
	dev, err := readWADevice(ctx, r.src.db.Database, jid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, whyNoWADevice
	} else if err != nil {
		r.log.Warn().Err(err).Msg("Old WhatsApp device is not readable")
		return nil, nil, "the old WhatsApp device row is not in the format this import knows (" + err.Error() + "); link the device again"
	}
	lid := md.LID
	if !dev.LID.IsEmpty() {
		lid = dev.LID.ToNonAD().String()
	}
	out.Metadata = &waid.UserLoginMetadata{DeviceJID: jid.String(), LID: lid, PushName: dev.PushName}
	save := func(ctx context.Context) error {
		if err := r.carryWADevice(ctx, dev); err != nil {
			return fmt.Errorf("failed to carry the WhatsApp device of %s: %w", out.ID, err)
		}
		return nil
	}
	return out, save, ""
}

const getWADeviceQuery = `
	SELECT jid, lid, registration_id, noise_key, identity_key,
		signed_pre_key, signed_pre_key_id, signed_pre_key_sig,
		adv_key, adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig,
		platform, business_name, push_name, facebook_uuid, lid_migration_ts
	FROM whatsmeow_device WHERE jid=$1`

// readWADevice reads a device row of sqlstore's schema (sql.ErrNoRows if
// there is none); its columns are wastore's.
func readWADevice(ctx context.Context, db *dbutil.Database, jid types.JID) (*store.Device, error) {
	return wastore.ScanDevice(db.QueryRow(ctx, getWADeviceQuery, jid.String()))
}

// The per-device tables of sqlstore's schema, read as they are.
const (
	getWAIdentitiesQuery  = `SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid=$1`
	getWASessionsQuery    = `SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid=$1`
	getWAPreKeysQuery     = `SELECT key_id, key, uploaded FROM whatsmeow_pre_keys WHERE jid=$1 ORDER BY key_id`
	getWASenderKeysQuery  = `SELECT chat_id, sender_id, sender_key FROM whatsmeow_sender_keys WHERE our_jid=$1`
	getWASyncKeysQuery    = `SELECT key_id, key_data, timestamp, fingerprint FROM whatsmeow_app_state_sync_keys WHERE jid=$1`
	getWAStateVersQuery   = `SELECT name, version, hash FROM whatsmeow_app_state_version WHERE jid=$1`
	getWAMutationMACQuery = `SELECT version, index_mac, value_mac FROM whatsmeow_app_state_mutation_macs WHERE jid=$1 AND name=$2`
	getWAContactsQuery    = `
		SELECT their_jid, first_name, full_name, push_name, business_name, redacted_phone
		FROM whatsmeow_contacts WHERE our_jid=$1`
	getWAChatSettingsQuery = `SELECT chat_jid, muted_until, pinned, archived FROM whatsmeow_chat_settings WHERE our_jid=$1`
	getWASecretsQuery      = `SELECT chat_jid, sender_jid, message_id, key FROM whatsmeow_message_secrets WHERE our_jid=$1`
	getWAPrivacyQuery      = `SELECT their_jid, token, timestamp FROM whatsmeow_privacy_tokens WHERE our_jid=$1`
	getWAEventBufferQuery  = `SELECT ciphertext_hash, plaintext, server_timestamp FROM whatsmeow_event_buffer WHERE our_jid=$1`
	getWALIDMapQuery       = `SELECT lid, pn FROM whatsmeow_lid_map`
)

// eachRow runs fn on every row of query.
func eachRow(ctx context.Context, db *dbutil.Database, query string, fn func(dbutil.Scannable) error, args ...any) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err = fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// carryWADevice writes dev and everything its old store kept for it into
// Passerelle's device store.
func (r *run) carryWADevice(ctx context.Context, dev *store.Device) error {
	src := r.src.db.Database
	own := dev.ID.String()
	// A device row without a login (left by an earlier link of the same
	// phone) is stale: the old bridge's device is the one in use.
	if stale, err := r.waStore.GetDevice(ctx, *dev.ID); err != nil {
		return err
	} else if stale != nil {
		if err = r.waStore.DeleteDevice(ctx, stale); err != nil {
			return err
		}
	}
	if err := r.waStore.PutDevice(ctx, dev); err != nil {
		return err
	}
	if !r.wa.lidMaps {
		var mappings []store.LIDMapping
		err := eachRow(ctx, src, getWALIDMapQuery, func(row dbutil.Scannable) error {
			var lid, pn string
			if err := row.Scan(&lid, &pn); err != nil {
				return err
			}
			// Rows of another shape are left out: the map is rebuilt
			// as the gateway meets those users.
			if lid == "" || pn == "" {
				return nil
			}
			mappings = append(mappings, store.LIDMapping{LID: types.NewJID(lid, types.HiddenUserServer), PN: types.NewJID(pn, types.DefaultUserServer)})
			return nil
		})
		if err != nil {
			return fmt.Errorf("failed to read the LID map: %w", err)
		}
		if err = r.waStore.LIDMap.PutManyLIDMappings(ctx, mappings); err != nil {
			return err
		}
		r.wa.lidMaps = true
	}
	steps := []struct {
		what  string
		query string
		put   func(dbutil.Scannable) error
	}{
		{"identity keys", getWAIdentitiesQuery, func(row dbutil.Scannable) error {
			var addr string
			var key []byte
			if err := row.Scan(&addr, &key); err != nil {
				return err
			}
			if len(key) != 32 {
				return fmt.Errorf("identity key of %s: %w", addr, wastore.ErrInvalidLength)
			}
			return dev.Identities.PutIdentity(ctx, addr, [32]byte(key))
		}},
		{"Signal sessions", getWASessionsQuery, func(row dbutil.Scannable) error {
			var addr string
			var session []byte
			if err := row.Scan(&addr, &session); err != nil {
				return err
			}
			return dev.Sessions.PutSession(ctx, addr, session)
		}},
		{"prekeys", getWAPreKeysQuery, func(row dbutil.Scannable) error {
			var keyID uint32
			var priv []byte
			var uploaded bool
			if err := row.Scan(&keyID, &priv, &uploaded); err != nil {
				return err
			}
			if len(priv) != 32 {
				return fmt.Errorf("prekey %d: %w", keyID, wastore.ErrInvalidLength)
			}
			key := &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte(priv)), KeyID: keyID}
			return r.waStore.PutPreKey(ctx, *dev.ID, key, uploaded)
		}},
		{"sender keys", getWASenderKeysQuery, func(row dbutil.Scannable) error {
			var chat, sender string
			var key []byte
			if err := row.Scan(&chat, &sender, &key); err != nil {
				return err
			}
			return dev.SenderKeys.PutSenderKey(ctx, chat, sender, key)
		}},
		{"app state keys", getWASyncKeysQuery, func(row dbutil.Scannable) error {
			var keyID []byte
			var key store.AppStateSyncKey
			if err := row.Scan(&keyID, &key.Data, &key.Timestamp, &key.Fingerprint); err != nil {
				return err
			}
			return dev.AppStateKeys.PutAppStateSyncKey(ctx, keyID, key)
		}},
		{"app state versions", getWAStateVersQuery, func(row dbutil.Scannable) error {
			var name string
			var version uint64
			var hash []byte
			if err := row.Scan(&name, &version, &hash); err != nil {
				return err
			}
			if len(hash) != 128 {
				return fmt.Errorf("app state hash of %s: %w", name, wastore.ErrInvalidLength)
			}
			if err := dev.AppState.PutAppStateVersion(ctx, name, version, [128]byte(hash)); err != nil {
				return err
			}
			return r.carryMutationMACs(ctx, dev, name)
		}},
		{"contacts", getWAContactsQuery, func(row dbutil.Scannable) error {
			return carryWAContact(ctx, dev, row)
		}},
		{"chat settings", getWAChatSettingsQuery, func(row dbutil.Scannable) error {
			var chatStr string
			var mutedUntil int64
			var pinned, archived bool
			if err := row.Scan(&chatStr, &mutedUntil, &pinned, &archived); err != nil {
				return err
			}
			chat, err := types.ParseJID(chatStr)
			if err != nil {
				return nil // not a chat whatsmeow can address any more
			}
			if mutedUntil < 0 {
				err = dev.ChatSettings.PutMutedUntil(ctx, chat, store.MutedForever)
			} else if mutedUntil > 0 {
				err = dev.ChatSettings.PutMutedUntil(ctx, chat, time.Unix(mutedUntil, 0))
			}
			if err == nil && pinned {
				err = dev.ChatSettings.PutPinned(ctx, chat, true)
			}
			if err == nil && archived {
				err = dev.ChatSettings.PutArchived(ctx, chat, true)
			}
			return err
		}},
		{"message secrets", getWASecretsQuery, func(row dbutil.Scannable) error {
			var chatStr, senderStr, msgID string
			var key []byte
			if err := row.Scan(&chatStr, &senderStr, &msgID, &key); err != nil {
				return err
			}
			chat, err1 := types.ParseJID(chatStr)
			sender, err2 := types.ParseJID(senderStr)
			if err1 != nil || err2 != nil {
				return nil
			}
			return dev.MsgSecrets.PutMessageSecrets(ctx, []store.MessageSecretInsert{{Chat: chat, Sender: sender, ID: msgID, Secret: key}})
		}},
		{"privacy tokens", getWAPrivacyQuery, func(row dbutil.Scannable) error {
			var userStr string
			var token []byte
			var ts int64
			if err := row.Scan(&userStr, &token, &ts); err != nil {
				return err
			}
			user, err := types.ParseJID(userStr)
			if err != nil {
				return nil
			}
			return dev.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: user, Token: token, Timestamp: time.Unix(ts, 0)})
		}},
		{"event buffer", getWAEventBufferQuery, func(row dbutil.Scannable) error {
			var hash, plaintext []byte
			var serverTS int64
			if err := row.Scan(&hash, &plaintext, &serverTS); err != nil {
				return err
			}
			if len(hash) != 32 {
				return nil
			}
			return dev.EventBuffer.PutBufferedEvent(ctx, [32]byte(hash), plaintext, time.Unix(serverTS, 0))
		}},
	}
	for _, step := range steps {
		if err := eachRow(ctx, src, step.query, step.put, own); err != nil {
			return fmt.Errorf("failed to carry the device's %s: %w", step.what, err)
		}
	}
	return nil
}

func (r *run) carryMutationMACs(ctx context.Context, dev *store.Device, name string) error {
	byVersion := map[uint64][]store.AppStateMutationMAC{}
	err := eachRow(ctx, r.src.db.Database, getWAMutationMACQuery, func(row dbutil.Scannable) error {
		var version uint64
		var mac store.AppStateMutationMAC
		if err := row.Scan(&version, &mac.IndexMAC, &mac.ValueMAC); err != nil {
			return err
		}
		byVersion[version] = append(byVersion[version], mac)
		return nil
	}, dev.ID.String(), name)
	if err != nil {
		return err
	}
	for version, macs := range byVersion {
		if err = dev.AppState.PutAppStateMutationMACs(ctx, name, version, macs); err != nil {
			return err
		}
	}
	return nil
}

func carryWAContact(ctx context.Context, dev *store.Device, row dbutil.Scannable) error {
	var theirJID string
	var first, full, push, business, redacted sql.NullString
	if err := row.Scan(&theirJID, &first, &full, &push, &business, &redacted); err != nil {
		return err
	}
	user, err := types.ParseJID(theirJID)
	if err != nil {
		return nil
	}
	if first.String != "" || full.String != "" {
		if err = dev.Contacts.PutContactName(ctx, user, first.String, full.String); err != nil {
			return err
		}
	}
	if push.String != "" {
		if _, _, err = dev.Contacts.PutPushName(ctx, user, push.String); err != nil {
			return err
		}
	}
	if business.String != "" {
		if _, _, err = dev.Contacts.PutBusinessName(ctx, user, business.String); err != nil {
			return err
		}
	}
	if redacted.String != "" {
		return dev.Contacts.PutManyRedactedPhones(ctx, []store.RedactedPhoneEntry{{JID: user, RedactedPhone: redacted.String}})
	}
	return nil
}
