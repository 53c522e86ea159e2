package importer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/session"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// Why a login's session does not come along.
const (
	whyNoAuthKey     = "the old login has no Telegram auth key (logged out)"
	whyUnknownFormat = "the old login's session is not in the format this import knows"
)

const getLoginMetadataQuery = `SELECT metadata FROM user_login WHERE bridge_id=$1 AND id=$2`

// tgOldLogin is the part of mautrix-telegram's login metadata that the
// import reads: the MTProto session (auth key, data centre, salt) and the
// phone number. Read from the raw JSON so that the 64-bit salt is exact.
type tgOldLogin struct {
	Phone   string `json:"phone"`
	Session struct {
		AuthKey []byte `json:"auth_key"`
		DC      int    `json:"dc_id"`
		Addr    string `json:"server_address"`
		Salt    int64  `json:"salt"`
	} `json:"session"`
}

// authKeySize is the size of an MTProto auth key.
const authKeySize = 256

// translateLogin returns the login to write and a function that writes its
// session, or why the staff member has to log in again.
func (r *run) translateLogin(ctx context.Context, old *database.UserLogin, newID networkid.UserLoginID) (*database.UserLogin, func(context.Context) error, string) {
	out := &database.UserLogin{
		UserMXID:      old.UserMXID,
		ID:            newID,
		RemoteName:    old.RemoteName,
		RemoteProfile: old.RemoteProfile,
	}
	switch r.tr.Network() {
	case tgid.Network:
		return r.translateTelegramLogin(ctx, old, out)
	case waid.Network:
		return r.translateWhatsAppLogin(ctx, old, out)
	default:
		return nil, nil, whyUnknownFormat
	}
}

func (r *run) translateTelegramLogin(ctx context.Context, old, out *database.UserLogin) (*database.UserLogin, func(context.Context) error, string) {
	var raw string
	err := r.src.db.QueryRow(ctx, getLoginMetadataQuery, r.src.db.BridgeID, old.ID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) || err != nil {
		return nil, nil, whyUnknownFormat
	}
	var meta tgOldLogin
	if err = json.Unmarshal([]byte(raw), &meta); err != nil {
		return nil, nil, whyUnknownFormat
	}
	if len(meta.Session.AuthKey) != authKeySize {
		return nil, nil, whyNoAuthKey
	}
	if meta.Session.DC <= 0 {
		return nil, nil, whyUnknownFormat
	}
	userID, err := tgid.ParseUserLoginID(out.ID)
	if err != nil {
		return nil, nil, whyUnknownFormat
	}
	out.Metadata = &tgid.UserLoginMetadata{Phone: meta.Phone}
	var key crypto.Key
	copy(key[:], meta.Session.AuthKey)
	keyID := key.ID()
	data := &session.Data{
		DC:        meta.Session.DC,
		Addr:      meta.Session.Addr,
		AuthKey:   meta.Session.AuthKey,
		AuthKeyID: keyID[:],
		Salt:      meta.Session.Salt,
	}
	save := func(ctx context.Context) error {
		loader := session.Loader{Storage: r.tgStore.Session(userID)}
		if err := loader.Save(ctx, data); err != nil {
			return fmt.Errorf("failed to write the Telegram session of %s: %w", out.ID, err)
		}
		return nil
	}
	return out, save, ""
}
