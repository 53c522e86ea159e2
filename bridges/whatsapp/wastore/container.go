// Package wastore is the WhatsApp device store of Passerelle: an
// implementation of whatsmeow's store interfaces (store.DeviceContainer and
// store.AllStores) on the gateway's database, in tables prefixed
// "whatsapp_", on SQLite and PostgreSQL.
//
// whatsmeow's own sqlstore does not build against the go.mau.fi/util version
// that mautrix-go pins, so this package takes its place. The semantics follow
// sqlstore (one row set per linked device, keyed by the device JID, deleted
// in cascade with the device; one global LID map).
package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/google/uuid"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/util/random"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/passerelle/passerelle/bridges/whatsapp/wastore/upgrades"
)

var _ store.DeviceContainer = (*Container)(nil)

// VersionTable is the name of the store's version table.
const VersionTable = "whatsapp_version"

// Errors returned by the store.
var (
	// ErrDeviceIDMustBeSet is returned when saving a device that is not paired yet.
	ErrDeviceIDMustBeSet = errors.New("device JID must be known before saving")
	// ErrInvalidLength is returned when a stored key has the wrong length.
	ErrInvalidLength = errors.New("stored key has an invalid length")
)

// Container holds the devices of every WhatsApp login in one database.
type Container struct {
	db     *dbutil.Database
	log    waLog.Logger
	LIDMap *LIDMap
	clears *plaintextClears
	tokens *tokenCache

	cachesMu sync.Mutex
	caches   map[string]*signalCache
}

// New wraps db, which must be a database whose version table is this
// store's (see NewChild). log may be nil.
func New(db *dbutil.Database, log waLog.Logger) *Container {
	if log == nil {
		log = waLog.Noop
	}
	return &Container{db: db, log: log, LIDMap: newLIDMap(db), clears: newPlaintextClears(db, log), tokens: newTokenCache(),
		caches: make(map[string]*signalCache)}
}

// NewChild makes the store's child database on parent (normally the bridge's
// database) with its own version table.
func NewChild(parent *dbutil.Database, dbLog dbutil.DatabaseLogger, log waLog.Logger) *Container {
	return New(parent.Child(VersionTable, upgrades.Table, dbLog), log)
}

// FlushClears writes the clears of handled messages' buffered plaintexts
// that wait (see clears.go); the connector's stop calls it.
func (c *Container) FlushClears(ctx context.Context) error {
	return c.clears.flush(ctx)
}

// Upgrade creates or upgrades the store's tables.
func (c *Container) Upgrade(ctx context.Context) error {
	if err := c.db.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade whatsapp store tables: %w", err)
	}
	return nil
}

const (
	deviceColumns = `
		jid, lid, registration_id, noise_key, identity_key,
		signed_pre_key, signed_pre_key_id, signed_pre_key_sig,
		adv_key, adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig,
		platform, business_name, push_name, facebook_uuid, lid_migration_ts`
	getAllDevicesQuery = `SELECT ` + deviceColumns + ` FROM whatsapp_device`
	getDeviceQuery     = getAllDevicesQuery + ` WHERE jid=$1`
	putDeviceQuery     = `
		INSERT INTO whatsapp_device (` + deviceColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (jid) DO UPDATE
			SET lid=excluded.lid,
				platform=excluded.platform,
				business_name=excluded.business_name,
				push_name=excluded.push_name,
				facebook_uuid=excluded.facebook_uuid,
				lid_migration_ts=excluded.lid_migration_ts`
	deleteDeviceQuery = `DELETE FROM whatsapp_device WHERE jid=$1`
)

func (c *Container) scanDevice(row dbutil.Scannable) (*store.Device, error) {
	dev, err := ScanDevice(row)
	if err != nil {
		return nil, err
	}
	c.wire(dev)
	return dev, nil
}

// ScanDevice reads a device row whose columns are, in order: jid, lid,
// registration_id, noise_key, identity_key, signed_pre_key,
// signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,
// adv_account_sig, adv_account_sig_key, adv_device_sig, platform,
// business_name, push_name, facebook_uuid, lid_migration_ts (this store's
// schema, and whatsmeow's sqlstore's, which the import reads). The device
// has no stores wired.
func ScanDevice(row dbutil.Scannable) (*store.Device, error) {
	var (
		dev                                         store.Device
		jid                                         string
		lid, fbUUID                                 sql.NullString
		noisePriv, identityPriv, preKeyPriv, preSig []byte
		account                                     waAdv.ADVSignedDeviceIdentity
		preKeyID                                    uint32
	)
	err := row.Scan(
		&jid, &lid, &dev.RegistrationID, &noisePriv, &identityPriv,
		&preKeyPriv, &preKeyID, &preSig,
		&dev.AdvSecretKey, &account.Details, &account.AccountSignature, &account.AccountSignatureKey, &account.DeviceSignature,
		&dev.Platform, &dev.BusinessName, &dev.PushName, &fbUUID, &dev.LIDMigrationTimestamp)
	if err != nil {
		return nil, err
	}
	if len(noisePriv) != 32 || len(identityPriv) != 32 || len(preKeyPriv) != 32 || len(preSig) != 64 {
		return nil, ErrInvalidLength
	}
	parsedJID, err := types.ParseJID(jid)
	if err != nil {
		return nil, fmt.Errorf("failed to parse stored device JID: %w", err)
	}
	dev.ID = &parsedJID
	if lid.String != "" {
		if dev.LID, err = types.ParseJID(lid.String); err != nil {
			return nil, fmt.Errorf("failed to parse stored device LID: %w", err)
		}
	}
	if fbUUID.String != "" {
		if dev.FacebookUUID, err = uuid.Parse(fbUUID.String); err != nil {
			return nil, fmt.Errorf("failed to parse stored facebook UUID: %w", err)
		}
	}
	dev.NoiseKey = keys.NewKeyPairFromPrivateKey([32]byte(noisePriv))
	dev.IdentityKey = keys.NewKeyPairFromPrivateKey([32]byte(identityPriv))
	dev.SignedPreKey = &keys.PreKey{
		KeyPair:   *keys.NewKeyPairFromPrivateKey([32]byte(preKeyPriv)),
		KeyID:     preKeyID,
		Signature: (*[64]byte)(preSig),
	}
	dev.Account = &account
	return &dev, nil
}

// GetAllDevices returns every paired device in the store.
func (c *Container) GetAllDevices(ctx context.Context) ([]*store.Device, error) {
	rows, err := c.db.Query(ctx, getAllDevicesQuery)
	if err != nil {
		return nil, fmt.Errorf("failed to query devices: %w", err)
	}
	defer rows.Close()
	var out []*store.Device
	for rows.Next() {
		dev, err := c.scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan device: %w", err)
		}
		out = append(out, dev)
	}
	return out, rows.Err()
}

// GetDevice returns the device with the given (AD) JID, or nil if the store
// has none (never paired, logged out or unpaired).
func (c *Container) GetDevice(ctx context.Context, jid types.JID) (*store.Device, error) {
	dev, err := c.scanDevice(c.db.QueryRow(ctx, getDeviceQuery, jid.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load device: %w", err)
	}
	return dev, nil
}

// NewDevice returns a fresh, unpaired device with new keys. Nothing is stored
// until pairing succeeds (whatsmeow then calls PutDevice).
func (c *Container) NewDevice() *store.Device {
	identity := keys.NewKeyPair()
	return &store.Device{
		Log:            c.log,
		Container:      c,
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    identity,
		SignedPreKey:   identity.CreateSignedPreKey(1),
		RegistrationID: rand.Uint32N(16380) + 1,
		AdvSecretKey:   random.Bytes(32),
	}
}

// PutDevice implements store.DeviceContainer.
func (c *Container) PutDevice(ctx context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	if dev.Account == nil {
		return errors.New("device has no account identity")
	}
	lid := ""
	if !dev.LID.IsEmpty() {
		lid = dev.LID.String()
	}
	fbUUID := ""
	if dev.FacebookUUID != uuid.Nil {
		fbUUID = dev.FacebookUUID.String()
	}
	_, err := c.db.Exec(ctx, putDeviceQuery,
		dev.ID.String(), lid, dev.RegistrationID, dev.NoiseKey.Priv[:], dev.IdentityKey.Priv[:],
		dev.SignedPreKey.Priv[:], dev.SignedPreKey.KeyID, dev.SignedPreKey.Signature[:],
		dev.AdvSecretKey, dev.Account.Details, dev.Account.AccountSignature, dev.Account.AccountSignatureKey, dev.Account.DeviceSignature,
		dev.Platform, dev.BusinessName, dev.PushName, fbUUID, dev.LIDMigrationTimestamp)
	if err != nil {
		return fmt.Errorf("failed to save device: %w", err)
	}
	if !dev.Initialized {
		c.wire(dev)
	}
	return nil
}

// DeleteDevice implements store.DeviceContainer; the device's keys, sessions
// and other state go with it.
func (c *Container) DeleteDevice(ctx context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	defer c.tokens.invalidate()
	// The device's sessions and keys go with it in cascade: its cache
	// stops, and a device linked again under the JID gets a new one.
	c.dropSignalCache(dev.ID.String())
	if _, err := c.db.Exec(ctx, deleteDeviceQuery, dev.ID.String()); err != nil {
		return fmt.Errorf("failed to delete device: %w", err)
	}
	return nil
}

// signalCache is the cache of the device jid's sessions and identity keys,
// one per device whatever number of stores wrap it (signalcache.go).
func (c *Container) signalCache(jid string) *signalCache {
	c.cachesMu.Lock()
	defer c.cachesMu.Unlock()
	sc := c.caches[jid]
	if sc == nil {
		sc = newSignalCache()
		c.caches[jid] = sc
	}
	return sc
}

func (c *Container) dropSignalCache(jid string) {
	c.cachesMu.Lock()
	sc := c.caches[jid]
	delete(c.caches, jid)
	c.cachesMu.Unlock()
	if sc != nil {
		sc.turnOff()
	}
}

func (c *Container) wire(dev *store.Device) {
	s := newDeviceStore(c, *dev.ID)
	dev.Log = c.log
	dev.Container = c
	dev.Identities = s
	dev.Sessions = s
	dev.PreKeys = s
	dev.SenderKeys = s
	dev.AppStateKeys = s
	dev.AppState = s
	dev.Contacts = s
	dev.ChatSettings = s
	dev.MsgSecrets = s
	dev.PrivacyTokens = s
	dev.EventBuffer = s
	dev.LIDs = c.LIDMap
	dev.Initialized = true
}
