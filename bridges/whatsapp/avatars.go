package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wamedia"
)

// maxPictureSize bounds a profile or group picture download.
const maxPictureSize = 8 << 20

var defaultPictureHTTP = &http.Client{Timeout: 60 * time.Second}

// pictureHTTP is the client that downloads pictures (the test server's
// media client when there is one).
func (c *WhatsAppConnector) pictureHTTP() *http.Client {
	if ts := c.testServer(); ts != nil && ts.MediaHTTPClient != nil {
		return ts.MediaHTTPClient
	} else if ts != nil && ts.HTTPClient != nil {
		return ts.HTTPClient
	}
	return defaultPictureHTTP
}

// avatarOf is the picture of a user or group as bridgev2 wants it: nil
// when WhatsApp did not say (the avatar is left as it is), removed when
// there is none, or else downloaded when its ID changed.
func (cl *Client) avatarOf(ctx context.Context, jid types.JID) *bridgev2.Avatar {
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	info, err := wa.GetProfilePictureInfo(ctx, jid, &whatsmeow.GetProfilePictureParams{})
	if errors.Is(err, whatsmeow.ErrProfilePictureNotSet) {
		return &bridgev2.Avatar{Remove: true}
	} else if err != nil || info == nil {
		cl.log.Debug().Err(err).Msg("Failed to get a profile picture")
		return nil
	}
	url := info.URL
	return &bridgev2.Avatar{ID: networkid.AvatarID(info.ID), Get: func(ctx context.Context) ([]byte, error) {
		return cl.main.downloadPicture(ctx, url)
	}}
}

func (c *WhatsAppConnector) downloadPicture(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.pictureHTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to download picture: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to download picture: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPictureSize+1))
	if err != nil {
		return nil, err
	} else if len(data) > maxPictureSize {
		return nil, fmt.Errorf("picture larger than %d bytes", maxPictureSize)
	}
	return data, nil
}

var _ bridgev2.RoomAvatarHandlingNetworkAPI = (*Client)(nil)

// HandleMatrixRoomAvatar implements bridgev2.RoomAvatarHandlingNetworkAPI:
// the room's avatar becomes the group's picture (or removes it), made a
// square JPEG of bounded size (wamedia.GroupPicture) and set through the
// staff member's own account; a refusal is undone.
func (cl *Client) HandleMatrixRoomAvatar(ctx context.Context, msg *bridgev2.MatrixRoomAvatar) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		err = cl.askGroupChange(ctx, remote.OutboundGroupChange, msg.Portal, chat, types.EmptyJID)
	}
	var data []byte
	if err == nil && msg.Content.URL != "" {
		if data, err = cl.main.Bridge.Bot.DownloadMedia(ctx, msg.Content.URL, nil); err != nil {
			err = fmt.Errorf("failed to download the room avatar: %w", err)
		} else if len(data) > maxPictureSize {
			err = certain(fmt.Errorf("the picture is larger than %d MiB", maxPictureSize>>20), event.MessageStatusUnsupported)
		} else if data, err = wamedia.GroupPicture(data); err != nil {
			// WhatsApp takes a square JPEG only.
			err = certain(err, event.MessageStatusUnsupported)
		}
	}
	var id string
	if err == nil {
		if wa := cl.client(); wa != nil {
			id, err = wa.SetGroupPhoto(ctx, chat, data)
		}
	}
	if err != nil {
		cl.revertState(ctx, msg.Portal, event.StateRoomAvatar, &event.RoomAvatarEventContent{URL: msg.Portal.AvatarMXC}, err)
		return false, err
	}
	if data == nil {
		id = ""
	}
	msg.Portal.AvatarID, msg.Portal.AvatarMXC, msg.Portal.AvatarSet = networkid.AvatarID(id), msg.Content.URL, true
	return true, nil
}
