package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/store"
)

const (
	putAppStateSyncKeyQuery = `
		INSERT INTO whatsapp_app_state_sync_keys (jid, key_id, key_data, timestamp, fingerprint) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (jid, key_id) DO UPDATE
			SET key_data=excluded.key_data, timestamp=excluded.timestamp, fingerprint=excluded.fingerprint
			WHERE excluded.timestamp > whatsapp_app_state_sync_keys.timestamp`
	getAppStateSyncKeyQuery         = `SELECT key_data, timestamp, fingerprint FROM whatsapp_app_state_sync_keys WHERE jid=$1 AND key_id=$2`
	getLatestAppStateSyncKeyIDQuery = `SELECT key_id FROM whatsapp_app_state_sync_keys WHERE jid=$1 ORDER BY timestamp DESC LIMIT 1`

	putAppStateVersionQuery = `
		INSERT INTO whatsapp_app_state_version (jid, name, version, hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (jid, name) DO UPDATE SET version=excluded.version, hash=excluded.hash`
	getAppStateVersionQuery    = `SELECT version, hash FROM whatsapp_app_state_version WHERE jid=$1 AND name=$2`
	deleteAppStateVersionQuery = `DELETE FROM whatsapp_app_state_version WHERE jid=$1 AND name=$2`
	putMutationMACQuery        = `
		INSERT INTO whatsapp_app_state_mutation_macs (jid, name, version, index_mac, value_mac) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (jid, name, version, index_mac) DO UPDATE SET value_mac=excluded.value_mac`
	deleteMutationMACsQuery = `DELETE FROM whatsapp_app_state_mutation_macs WHERE jid=$1 AND name=$2 AND index_mac IN (%s)`
	getMutationMACQuery     = `
		SELECT value_mac FROM whatsapp_app_state_mutation_macs
		WHERE jid=$1 AND name=$2 AND index_mac=$3 ORDER BY version DESC LIMIT 1`
)

// PutAppStateSyncKey implements store.AppStateSyncKeyStore; an older key
// never replaces a newer one.
func (s *deviceStore) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	_, err := s.db.Exec(ctx, putAppStateSyncKeyQuery, s.jid, id, key.Data, key.Timestamp, key.Fingerprint)
	return err
}

// GetAppStateSyncKey implements store.AppStateSyncKeyStore; nil if unknown.
func (s *deviceStore) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	var key store.AppStateSyncKey
	err := s.db.QueryRow(ctx, getAppStateSyncKeyQuery, s.jid, id).Scan(&key.Data, &key.Timestamp, &key.Fingerprint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &key, nil
}

// GetLatestAppStateSyncKeyID implements store.AppStateSyncKeyStore.
func (s *deviceStore) GetLatestAppStateSyncKeyID(ctx context.Context) (id []byte, err error) {
	err = noRows(s.db.QueryRow(ctx, getLatestAppStateSyncKeyIDQuery, s.jid).Scan(&id))
	return
}

// PutAppStateVersion implements store.AppStateStore.
func (s *deviceStore) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	_, err := s.db.Exec(ctx, putAppStateVersionQuery, s.jid, name, int64(version), hash[:])
	return err
}

// GetAppStateVersion implements store.AppStateStore: version 0 and a zero
// hash when nothing is stored.
func (s *deviceStore) GetAppStateVersion(ctx context.Context, name string) (version uint64, hash [128]byte, err error) {
	var v int64
	var raw []byte
	err = s.db.QueryRow(ctx, getAppStateVersionQuery, s.jid, name).Scan(&v, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, hash, nil
	} else if err != nil {
		return 0, hash, err
	} else if len(raw) != 128 {
		return 0, hash, ErrInvalidLength
	}
	return uint64(v), [128]byte(raw), nil
}

// DeleteAppStateVersion implements store.AppStateStore (the MACs go with it).
func (s *deviceStore) DeleteAppStateVersion(ctx context.Context, name string) error {
	_, err := s.db.Exec(ctx, deleteAppStateVersionQuery, s.jid, name)
	return err
}

// PutAppStateMutationMACs implements store.AppStateStore.
func (s *deviceStore) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	if len(mutations) == 0 {
		return nil
	}
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, m := range mutations {
			if _, err := s.db.Exec(ctx, putMutationMACQuery, s.jid, name, int64(version), m.IndexMAC, m.ValueMAC); err != nil {
				return fmt.Errorf("failed to store mutation MAC: %w", err)
			}
		}
		return nil
	})
}

// DeleteAppStateMutationMACs implements store.AppStateStore.
func (s *deviceStore) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	if len(indexMACs) == 0 {
		return nil
	}
	const chunk = 400
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for start := 0; start < len(indexMACs); start += chunk {
			part := indexMACs[start:min(start+chunk, len(indexMACs))]
			args := []any{s.jid, name}
			placeholders := make([]string, len(part))
			for i, mac := range part {
				args = append(args, mac)
				placeholders[i] = fmt.Sprintf("$%d", i+3)
			}
			if _, err := s.db.Exec(ctx, fmt.Sprintf(deleteMutationMACsQuery, strings.Join(placeholders, ",")), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetAppStateMutationMAC implements store.AppStateStore.
func (s *deviceStore) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) (valueMAC []byte, err error) {
	err = noRows(s.db.QueryRow(ctx, getMutationMACQuery, s.jid, name, indexMAC).Scan(&valueMAC))
	return
}
