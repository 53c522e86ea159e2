package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/util/dbutil"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

var _ store.LIDStore = (*LIDMap)(nil)

// LIDMap is the global map between LIDs and phone numbers, cached in memory.
type LIDMap struct {
	db *dbutil.Database

	mu      sync.RWMutex
	pnToLID map[string]string
	lidToPN map[string]string
}

func newLIDMap(db *dbutil.Database) *LIDMap {
	return &LIDMap{db: db, pnToLID: make(map[string]string), lidToPN: make(map[string]string)}
}

const (
	deleteOtherLIDForPNQuery = `DELETE FROM whatsapp_lid_map WHERE lid<>$1 AND pn=$2`
	putLIDMappingQuery       = `
		INSERT INTO whatsapp_lid_map (lid, pn) VALUES ($1, $2)
		ON CONFLICT (lid) DO UPDATE SET pn=excluded.pn WHERE whatsapp_lid_map.pn<>excluded.pn`
	getLIDForPNQuery = `SELECT lid FROM whatsapp_lid_map WHERE pn=$1`
	getPNForLIDQuery = `SELECT pn FROM whatsapp_lid_map WHERE lid=$1`
)

func (m *LIDMap) lookup(ctx context.Context, source types.JID, targetServer, query string, cache, reverse map[string]string) (types.JID, error) {
	m.mu.RLock()
	target, ok := cache[source.User]
	m.mu.RUnlock()
	if !ok {
		err := m.db.QueryRow(ctx, query, source.User).Scan(&target)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return types.EmptyJID, fmt.Errorf("failed to look up LID mapping: %w", err)
		}
		m.mu.Lock()
		cache[source.User] = target
		if target != "" {
			reverse[target] = source.User
		}
		m.mu.Unlock()
	}
	if target == "" {
		return types.EmptyJID, nil
	}
	return types.JID{User: target, Device: source.Device, Server: targetServer}, nil
}

// GetLIDForPN implements store.LIDStore; an empty JID when unknown.
func (m *LIDMap) GetLIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	if pn.Server != types.DefaultUserServer {
		return types.EmptyJID, fmt.Errorf("GetLIDForPN called with a non-phone JID on %s", pn.Server)
	}
	return m.lookup(ctx, pn, types.HiddenUserServer, getLIDForPNQuery, m.pnToLID, m.lidToPN)
}

// GetPNForLID implements store.LIDStore; an empty JID when unknown.
func (m *LIDMap) GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	if lid.Server != types.HiddenUserServer {
		return types.EmptyJID, fmt.Errorf("GetPNForLID called with a non-LID JID on %s", lid.Server)
	}
	return m.lookup(ctx, lid, types.DefaultUserServer, getPNForLIDQuery, m.lidToPN, m.pnToLID)
}

// GetManyLIDsForPNs implements store.LIDStore: only known mappings are in
// the result.
func (m *LIDMap) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	if len(pns) == 0 {
		return nil, nil
	}
	out := make(map[types.JID]types.JID, len(pns))
	for _, pn := range pns {
		if pn.Server != types.DefaultUserServer {
			continue
		}
		lid, err := m.GetLIDForPN(ctx, pn)
		if err != nil {
			return nil, err
		}
		if !lid.IsEmpty() {
			out[pn] = lid
		}
	}
	return out, nil
}

// PutLIDMapping implements store.LIDStore.
func (m *LIDMap) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	return m.PutManyLIDMappings(ctx, []store.LIDMapping{{LID: lid, PN: pn}})
}

// PutManyLIDMappings implements store.LIDStore; a phone number maps to one
// LID only, so a new mapping replaces an older one.
func (m *LIDMap) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	missing := make([]store.LIDMapping, 0, len(mappings))
	m.mu.RLock()
	for _, mp := range mappings {
		if mp.LID.Server != types.HiddenUserServer || mp.PN.Server != types.DefaultUserServer {
			m.mu.RUnlock()
			return fmt.Errorf("invalid LID mapping %s -> %s", mp.LID.Server, mp.PN.Server)
		}
		if m.pnToLID[mp.PN.User] != mp.LID.User {
			missing = append(missing, mp)
		}
	}
	m.mu.RUnlock()
	if len(missing) == 0 {
		return nil
	}
	err := m.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, mp := range missing {
			if _, err := m.db.Exec(ctx, deleteOtherLIDForPNQuery, mp.LID.User, mp.PN.User); err != nil {
				return fmt.Errorf("failed to delete old LID mapping: %w", err)
			}
			if _, err := m.db.Exec(ctx, putLIDMappingQuery, mp.LID.User, mp.PN.User); err != nil {
				return fmt.Errorf("failed to store LID mapping: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	for _, mp := range missing {
		if oldPN, ok := m.lidToPN[mp.LID.User]; ok {
			delete(m.pnToLID, oldPN)
		}
		if oldLID, ok := m.pnToLID[mp.PN.User]; ok {
			delete(m.lidToPN, oldLID)
		}
		m.pnToLID[mp.PN.User] = mp.LID.User
		m.lidToPN[mp.LID.User] = mp.PN.User
	}
	m.mu.Unlock()
	return nil
}
