// Package memstore is an in-memory implementation of whatsmeow's device store
// (store.AllStores and store.DeviceContainer).
//
// It exists because whatsmeow's sqlstore does not build against the
// go.mau.fi/util version this module uses. The simulator keeps each simulated
// phone's Signal state in one, and tests give each whatsmeow client one: a
// Store outlives the client, so a "restarted" client built from
// [Store.Load] logs in again with the same keys.
package memstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.mau.fi/util/random"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"

	"google.golang.org/protobuf/proto"
)

// ErrDeviceIDMustBeSet is returned by PutDevice for a device without a JID.
var ErrDeviceIDMustBeSet = errors.New("device JID must be known before saving")

type preKey struct {
	key      *keys.PreKey
	uploaded bool
}

type senderKeyID struct{ group, user string }

type secretKey struct {
	chat, sender types.JID
	id           types.MessageID
}

// Store holds the state of one whatsmeow device in memory. It is safe for
// concurrent use.
type Store struct {
	log waLog.Logger

	mu            sync.Mutex
	identities    map[string][32]byte
	sessions      map[string][]byte
	preKeys       map[uint32]*preKey
	lastPreKeyID  uint32
	senderKeys    map[senderKeyID][]byte
	appStateKeys  map[string]store.AppStateSyncKey
	latestKeyID   []byte
	appStateVers  map[string]appStateVersion
	appStateMACs  map[string][]byte
	contacts      map[types.JID]types.ContactInfo
	chatSettings  map[types.JID]types.LocalChatSettings
	msgSecrets    map[secretKey][]byte
	privacyTokens map[types.JID]store.PrivacyToken
	lidByPN       map[string]string
	pnByLID       map[string]string
	migrated      map[string]bool

	saved *store.Device // snapshot of the last PutDevice, nil if none or deleted
}

type appStateVersion struct {
	version uint64
	hash    [128]byte
}

var (
	_ store.AllStores       = (*Store)(nil)
	_ store.DeviceContainer = (*Store)(nil)
)

// New returns an empty store. log may be nil.
func New(log waLog.Logger) *Store {
	if log == nil {
		log = waLog.Noop
	}
	return &Store{
		log:           log,
		identities:    map[string][32]byte{},
		sessions:      map[string][]byte{},
		preKeys:       map[uint32]*preKey{},
		senderKeys:    map[senderKeyID][]byte{},
		appStateKeys:  map[string]store.AppStateSyncKey{},
		appStateVers:  map[string]appStateVersion{},
		appStateMACs:  map[string][]byte{},
		contacts:      map[types.JID]types.ContactInfo{},
		chatSettings:  map[types.JID]types.LocalChatSettings{},
		msgSecrets:    map[secretKey][]byte{},
		privacyTokens: map[types.JID]store.PrivacyToken{},
		lidByPN:       map[string]string{},
		pnByLID:       map[string]string{},
		migrated:      map[string]bool{},
	}
}

func (s *Store) wire(dev *store.Device) *store.Device {
	dev.Log = s.log
	dev.Container = s
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
	dev.LIDs = s
	dev.Initialized = true
	return dev
}

// NewDevice returns a fresh, unpaired device with new keys, backed by s.
func (s *Store) NewDevice() *store.Device {
	identity := keys.NewKeyPair()
	return s.wire(&store.Device{
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    identity,
		SignedPreKey:   identity.CreateSignedPreKey(1),
		RegistrationID: rand.Uint32N(16380) + 1,
		AdvSecretKey:   random.Bytes(32),
	})
}

// Load returns a new device value built from the last saved state, as a
// restarted process would read it from its database, or nil when no paired
// device is saved (never paired, logged out or unpaired).
func (s *Store) Load() *store.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saved == nil {
		return nil
	}
	return s.wire(cloneDevice(s.saved))
}

func cloneDevice(d *store.Device) *store.Device {
	out := &store.Device{
		NoiseKey:              d.NoiseKey,
		IdentityKey:           d.IdentityKey,
		SignedPreKey:          d.SignedPreKey,
		RegistrationID:        d.RegistrationID,
		AdvSecretKey:          append([]byte(nil), d.AdvSecretKey...),
		LID:                   d.LID,
		Platform:              d.Platform,
		BusinessName:          d.BusinessName,
		PushName:              d.PushName,
		LIDMigrationTimestamp: d.LIDMigrationTimestamp,
		FacebookUUID:          d.FacebookUUID,
	}
	if d.ID != nil {
		id := *d.ID
		out.ID = &id
	}
	if d.Account != nil {
		out.Account = proto.Clone(d.Account).(*waAdv.ADVSignedDeviceIdentity)
	}
	return out
}

// PutDevice implements store.DeviceContainer.
func (s *Store) PutDevice(_ context.Context, dev *store.Device) error {
	if dev.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	s.mu.Lock()
	s.saved = cloneDevice(dev)
	s.mu.Unlock()
	return nil
}

// DeleteDevice implements store.DeviceContainer: it forgets the device and
// all of its Signal state, as sqlstore's cascading delete does.
func (s *Store) DeleteDevice(_ context.Context, _ *store.Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved = nil
	clear(s.identities)
	clear(s.sessions)
	clear(s.preKeys)
	clear(s.senderKeys)
	clear(s.appStateKeys)
	clear(s.appStateVers)
	clear(s.appStateMACs)
	clear(s.contacts)
	clear(s.chatSettings)
	clear(s.msgSecrets)
	clear(s.privacyTokens)
	s.latestKeyID = nil
	return nil
}

// Identities

func (s *Store) PutIdentity(_ context.Context, address string, key [32]byte) error {
	s.mu.Lock()
	s.identities[address] = key
	s.mu.Unlock()
	return nil
}

func deletePrefix[V any](m map[string]V, prefix string) {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			delete(m, k)
		}
	}
}

func (s *Store) DeleteAllIdentities(_ context.Context, phone string) error {
	s.mu.Lock()
	deletePrefix(s.identities, phone+":")
	s.mu.Unlock()
	return nil
}

func (s *Store) DeleteIdentity(_ context.Context, address string) error {
	s.mu.Lock()
	delete(s.identities, address)
	s.mu.Unlock()
	return nil
}

func (s *Store) IsTrustedIdentity(_ context.Context, address string, key [32]byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known, ok := s.identities[address]
	return !ok || known == key, nil
}

// Sessions

func (s *Store) GetSession(_ context.Context, address string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[address], nil
}

func (s *Store) HasSession(_ context.Context, address string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[address]
	return ok, nil
}

func (s *Store) GetManySessions(_ context.Context, addresses []string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(addresses))
	for _, addr := range addresses {
		out[addr] = s.sessions[addr]
	}
	return out, nil
}

func (s *Store) PutSession(_ context.Context, address string, session []byte) error {
	s.mu.Lock()
	s.sessions[address] = session
	s.mu.Unlock()
	return nil
}

func (s *Store) PutManySessions(_ context.Context, sessions map[string][]byte) error {
	s.mu.Lock()
	for addr, sess := range sessions {
		s.sessions[addr] = sess
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) DeleteAllSessions(_ context.Context, phone string) error {
	s.mu.Lock()
	deletePrefix(s.sessions, phone+":")
	s.mu.Unlock()
	return nil
}

func (s *Store) DeleteSession(_ context.Context, address string) error {
	s.mu.Lock()
	delete(s.sessions, address)
	s.mu.Unlock()
	return nil
}

func movePrefix[V any](m map[string]V, from, to string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, from+":") {
			m[to+k[len(from):]] = v
			delete(m, k)
			n++
		}
	}
	return n
}

// MigratePNToLID moves sessions, identities and sender keys stored under a
// phone-number address to the matching LID address, as sqlstore does.
func (s *Store) MigratePNToLID(_ context.Context, pn, lid types.JID) error {
	pnSignal, lidSignal := pn.SignalAddressUser(), lid.SignalAddressUser()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated[pnSignal] {
		return nil
	}
	s.migrated[pnSignal] = true
	movePrefix(s.sessions, pnSignal, lidSignal)
	movePrefix(s.identities, pnSignal, lidSignal)
	for k, v := range s.senderKeys {
		if strings.HasPrefix(k.user, pnSignal+":") {
			s.senderKeys[senderKeyID{k.group, lidSignal + k.user[len(pnSignal):]}] = v
			delete(s.senderKeys, k)
		}
	}
	return nil
}

// Prekeys

func (s *Store) genPreKey(uploaded bool) *keys.PreKey {
	s.lastPreKeyID++
	key := keys.NewPreKey(s.lastPreKeyID)
	s.preKeys[key.KeyID] = &preKey{key: key, uploaded: uploaded}
	return key
}

func (s *Store) GetOrGenPreKeys(_ context.Context, count uint32) ([]*keys.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*keys.PreKey, 0, count)
	for id := uint32(1); id <= s.lastPreKeyID && uint32(len(out)) < count; id++ {
		if pk, ok := s.preKeys[id]; ok && !pk.uploaded {
			out = append(out, pk.key)
		}
	}
	for uint32(len(out)) < count {
		out = append(out, s.genPreKey(false))
	}
	return out, nil
}

func (s *Store) GenOnePreKey(_ context.Context) (*keys.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.genPreKey(true), nil
}

func (s *Store) GetPreKey(_ context.Context, id uint32) (*keys.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pk, ok := s.preKeys[id]; ok {
		return pk.key, nil
	}
	return nil, nil
}

func (s *Store) RemovePreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	delete(s.preKeys, id)
	s.mu.Unlock()
	return nil
}

func (s *Store) MarkPreKeysAsUploaded(_ context.Context, upToID uint32) error {
	s.mu.Lock()
	for id, pk := range s.preKeys {
		if id <= upToID {
			pk.uploaded = true
		}
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) UploadedPreKeyCount(_ context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, pk := range s.preKeys {
		if pk.uploaded {
			n++
		}
	}
	return n, nil
}

// Sender keys

func (s *Store) PutSenderKey(_ context.Context, group, user string, session []byte) error {
	s.mu.Lock()
	s.senderKeys[senderKeyID{group, user}] = session
	s.mu.Unlock()
	return nil
}

func (s *Store) GetSenderKey(_ context.Context, group, user string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.senderKeys[senderKeyID{group, user}], nil
}

// App state

func (s *Store) PutAppStateSyncKey(_ context.Context, id []byte, key store.AppStateSyncKey) error {
	s.mu.Lock()
	s.appStateKeys[string(id)] = key
	s.latestKeyID = append([]byte(nil), id...)
	s.mu.Unlock()
	return nil
}

func (s *Store) GetAppStateSyncKey(_ context.Context, id []byte) (*store.AppStateSyncKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key, ok := s.appStateKeys[string(id)]; ok {
		return &key, nil
	}
	return nil, nil
}

func (s *Store) GetLatestAppStateSyncKeyID(_ context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latestKeyID, nil
}

func (s *Store) PutAppStateVersion(_ context.Context, name string, version uint64, hash [128]byte) error {
	s.mu.Lock()
	s.appStateVers[name] = appStateVersion{version, hash}
	s.mu.Unlock()
	return nil
}

func (s *Store) GetAppStateVersion(_ context.Context, name string) (uint64, [128]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.appStateVers[name]
	return v.version, v.hash, nil
}

func (s *Store) DeleteAppStateVersion(_ context.Context, name string) error {
	s.mu.Lock()
	delete(s.appStateVers, name)
	s.mu.Unlock()
	return nil
}

func (s *Store) PutAppStateMutationMACs(_ context.Context, name string, _ uint64, mutations []store.AppStateMutationMAC) error {
	s.mu.Lock()
	for _, m := range mutations {
		s.appStateMACs[name+"\x00"+string(m.IndexMAC)] = m.ValueMAC
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) DeleteAppStateMutationMACs(_ context.Context, name string, indexMACs [][]byte) error {
	s.mu.Lock()
	for _, idx := range indexMACs {
		delete(s.appStateMACs, name+"\x00"+string(idx))
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) GetAppStateMutationMAC(_ context.Context, name string, indexMAC []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appStateMACs[name+"\x00"+string(indexMAC)], nil
}

// Contacts

func (s *Store) PutPushName(_ context.Context, user types.JID, pushName string) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[user]
	if c.PushName == pushName {
		return false, "", nil
	}
	prev := c.PushName
	c.Found, c.PushName = true, pushName
	s.contacts[user] = c
	return true, prev, nil
}

func (s *Store) PutBusinessName(_ context.Context, user types.JID, businessName string) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[user]
	if c.BusinessName == businessName {
		return false, "", nil
	}
	prev := c.BusinessName
	c.Found, c.BusinessName = true, businessName
	s.contacts[user] = c
	return true, prev, nil
}

func (s *Store) PutContactName(_ context.Context, user types.JID, fullName, firstName string) error {
	s.mu.Lock()
	c := s.contacts[user]
	c.Found, c.FullName, c.FirstName = true, fullName, firstName
	s.contacts[user] = c
	s.mu.Unlock()
	return nil
}

func (s *Store) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	for _, c := range contacts {
		_ = s.PutContactName(ctx, c.JID, c.FullName, c.FirstName)
	}
	return nil
}

func (s *Store) PutManyRedactedPhones(_ context.Context, entries []store.RedactedPhoneEntry) error {
	s.mu.Lock()
	for _, e := range entries {
		c := s.contacts[e.JID]
		c.RedactedPhone = e.RedactedPhone
		s.contacts[e.JID] = c
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) GetContact(_ context.Context, user types.JID) (types.ContactInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contacts[user], nil
}

func (s *Store) GetAllContacts(_ context.Context) (map[types.JID]types.ContactInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[types.JID]types.ContactInfo, len(s.contacts))
	for k, v := range s.contacts {
		out[k] = v
	}
	return out, nil
}

// Chat settings

func (s *Store) PutMutedUntil(_ context.Context, chat types.JID, mutedUntil time.Time) error {
	s.mu.Lock()
	c := s.chatSettings[chat]
	c.Found, c.MutedUntil = true, mutedUntil
	s.chatSettings[chat] = c
	s.mu.Unlock()
	return nil
}

func (s *Store) PutPinned(_ context.Context, chat types.JID, pinned bool) error {
	s.mu.Lock()
	c := s.chatSettings[chat]
	c.Found, c.Pinned = true, pinned
	s.chatSettings[chat] = c
	s.mu.Unlock()
	return nil
}

func (s *Store) PutArchived(_ context.Context, chat types.JID, archived bool) error {
	s.mu.Lock()
	c := s.chatSettings[chat]
	c.Found, c.Archived = true, archived
	s.chatSettings[chat] = c
	s.mu.Unlock()
	return nil
}

func (s *Store) GetChatSettings(_ context.Context, chat types.JID) (types.LocalChatSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chatSettings[chat], nil
}

// Message secrets

func (s *Store) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	for _, in := range inserts {
		_ = s.PutMessageSecret(ctx, in.Chat, in.Sender, in.ID, in.Secret)
	}
	return nil
}

func (s *Store) PutMessageSecret(_ context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	s.mu.Lock()
	key := secretKey{chat.ToNonAD(), sender.ToNonAD(), id}
	if _, ok := s.msgSecrets[key]; !ok {
		s.msgSecrets[key] = secret
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) GetMessageSecret(_ context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgSecrets[secretKey{chat.ToNonAD(), sender.ToNonAD(), id}], sender, nil
}

// Privacy tokens

func (s *Store) PutPrivacyTokens(_ context.Context, tokens ...store.PrivacyToken) error {
	s.mu.Lock()
	for _, t := range tokens {
		s.privacyTokens[t.User] = t
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) GetPrivacyToken(_ context.Context, user types.JID) (*store.PrivacyToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.privacyTokens[user]; ok {
		return &t, nil
	}
	return nil, nil
}

// Event buffer: not kept (whatsmeow only uses it when
// Client.EnableDecryptedEventBuffer is set).

func (s *Store) GetBufferedEvent(context.Context, [32]byte) (*store.BufferedEvent, error) {
	return nil, nil
}

func (s *Store) PutBufferedEvent(context.Context, [32]byte, []byte, time.Time) error { return nil }

func (s *Store) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	return fn(ctx)
}

func (s *Store) ClearBufferedEventPlaintext(context.Context, [32]byte) error { return nil }

func (s *Store) DeleteOldBufferedHashes(context.Context) error { return nil }

// LID mappings

func (s *Store) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	for _, m := range mappings {
		_ = s.PutLIDMapping(ctx, m.LID, m.PN)
	}
	return nil
}

func (s *Store) PutLIDMapping(_ context.Context, lid, pn types.JID) error {
	if lid.Server != types.HiddenUserServer || pn.Server != types.DefaultUserServer {
		return nil
	}
	s.mu.Lock()
	s.lidByPN[pn.User] = lid.User
	s.pnByLID[lid.User] = pn.User
	s.mu.Unlock()
	return nil
}

func (s *Store) GetPNForLID(_ context.Context, lid types.JID) (types.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pn, ok := s.pnByLID[lid.User]; ok {
		return types.JID{User: pn, Device: lid.Device, Server: types.DefaultUserServer}, nil
	}
	return types.EmptyJID, nil
}

func (s *Store) GetLIDForPN(_ context.Context, pn types.JID) (types.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lid, ok := s.lidByPN[pn.User]; ok {
		return types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}, nil
	}
	return types.EmptyJID, nil
}

func (s *Store) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	out := make(map[types.JID]types.JID, len(pns))
	for _, pn := range pns {
		if lid, _ := s.GetLIDForPN(ctx, pn); !lid.IsEmpty() {
			out[pn] = lid
		}
	}
	return out, nil
}
