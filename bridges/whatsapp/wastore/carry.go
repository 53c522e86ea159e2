package wastore

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// PutPreKey stores one of a device's one-time prekeys as it is, with its
// uploaded flag: for a device carried over from another store (passerelle
// import), whose prekeys the server may still hand out. whatsmeow's
// PreKeyStore only generates new ones.
func (c *Container) PutPreKey(ctx context.Context, device types.JID, key *keys.PreKey, uploaded bool) error {
	if key == nil || key.Priv == nil {
		return ErrInvalidLength
	}
	_, err := c.db.Exec(ctx, insertPreKeyQuery, device.String(), key.KeyID, key.Priv[:], uploaded)
	if err != nil {
		return fmt.Errorf("failed to store prekey %d: %w", key.KeyID, err)
	}
	return nil
}
