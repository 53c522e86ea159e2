package telegram

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/gotd/td/telegram/downloader"
	"github.com/gotd/td/telegram/uploader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
)

// Group photos. A Telegram chat photo is the portal's room avatar: its
// avatar ID is the photo's ID, so an unchanged photo is not downloaded and
// uploaded again. It is downloaded through the login that describes the
// group (the photo's file reference is its own). A room avatar set in
// Matrix becomes the group's photo through the staff member's own account,
// as a square JPEG; a refusal puts the avatar back.

var _ bridgev2.RoomAvatarHandlingNetworkAPI = (*Client)(nil)

// maxChatPhotoSize bounds a chat photo, both ways.
const maxChatPhotoSize = 10 << 20

// photoSentKept bounds the photos set from Matrix that are kept for their
// echo.
const photoSentKept = 64

// sentPhoto is a group photo set from Matrix: the room avatar it came from.
type sentPhoto struct {
	mxc  id.ContentURIString
	hash [32]byte
}

// photoEcho is the room avatar a group photo was set from, when the gateway
// set it from Matrix (its echo is then not downloaded back), once the sets
// in flight are over: another login can meet the change before the setting
// call returns.
func (c *Client) photoEcho(photoID int64) (sentPhoto, bool) {
	c.main.photoSets.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for the sets in flight is the point
	c.main.photoSets.Unlock()
	return c.main.photoSent.Get(photoID)
}

// chatAvatarID is the avatar ID of a Telegram chat photo.
func chatAvatarID(photoID int64) networkid.AvatarID {
	return networkid.AvatarID("tg.photo." + strconv.FormatInt(photoID, 10))
}

// photoAvatar is the room avatar of a chat photo: removed for none, or
// downloaded on demand (bridgev2 calls Get only when the ID changed).
func (c *Client) photoAvatar(p tg.PhotoClass) *bridgev2.Avatar {
	switch v := p.(type) {
	case nil, *tg.PhotoEmpty:
		return &bridgev2.Avatar{Remove: true}
	case *tg.Photo:
		f, ok := tgmedia.PhotoFile(v)
		if !ok {
			return nil
		}
		if sent, ok := c.photoEcho(v.ID); ok {
			return &bridgev2.Avatar{ID: chatAvatarID(v.ID), MXC: sent.mxc, Hash: sent.hash}
		}
		loc := f.Loc
		return &bridgev2.Avatar{ID: chatAvatarID(v.ID), Get: func(ctx context.Context) ([]byte, error) {
			return c.downloadChatPhoto(ctx, loc)
		}}
	}
	return nil
}

// downloadChatPhoto downloads a chat photo (at most maxChatPhotoSize).
func (c *Client) downloadChatPhoto(ctx context.Context, loc tg.InputFileLocationClass) ([]byte, error) {
	api, err := c.waitAPI(ctx)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := &capWriter{w: &buf, limit: maxChatPhotoSize}
	if _, err := downloader.NewDownloader().Download(api, loc).Stream(ctx, w); err != nil {
		return nil, fmt.Errorf("failed to download the group's photo: %w", err)
	}
	return buf.Bytes(), nil
}

// HandleMatrixRoomAvatar sets (or removes) the Telegram group's photo.
func (c *Client) HandleMatrixRoomAvatar(ctx context.Context, msg *bridgev2.MatrixRoomAvatar) (bool, error) {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil || (peer.Type != tgid.PeerChannel && peer.Type != tgid.PeerChat) {
		return false, fmt.Errorf("only Telegram groups have a photo to change")
	}
	photoID, err := c.setChatPhoto(ctx, msg, peer)
	if err != nil {
		c.revertState(ctx, msg.Portal, event.StateRoomAvatar, &event.RoomAvatarEventContent{URL: msg.Portal.AvatarMXC}, err)
		return false, err
	}
	switch {
	case photoID != 0:
		msg.Portal.AvatarID = chatAvatarID(photoID)
	case msg.Content.URL == "":
		msg.Portal.AvatarID = ""
	}
	msg.Portal.AvatarMXC, msg.Portal.AvatarSet = msg.Content.URL, true
	return true, nil
}

// setChatPhoto sends the room's new avatar to Telegram and returns the new
// photo's ID (0 when removed, or when Telegram did not say).
func (c *Client) setChatPhoto(ctx context.Context, msg *bridgev2.MatrixRoomAvatar, peer tgid.Peer) (int64, error) {
	if err := c.main.CheckOutbound(ctx, c.outbound(remote.OutboundGroupChange, msg.Portal, peer)); err != nil {
		return 0, err
	}
	var input *tg.InputChannel
	if peer.Type == tgid.PeerChannel {
		var err error
		if input, err = c.inputChannel(ctx, peer.ID); err != nil {
			return 0, err
		}
	}
	var photo tg.InputChatPhotoClass = &tg.InputChatPhotoEmpty{}
	var sent *sentPhoto
	if msg.Content.URL != "" {
		data, err := c.main.Bridge.Bot.DownloadMedia(ctx, msg.Content.URL, nil)
		if err != nil {
			return 0, fmt.Errorf("failed to download the room avatar: %w", err)
		}
		if len(data) > maxChatPhotoSize {
			return 0, fmt.Errorf("the picture is larger than %s", media.FormatSize(maxChatPhotoSize))
		}
		// The room's avatar as bridgev2 hashes it (the picture it came
		// from), for the echo.
		sent = &sentPhoto{mxc: msg.Content.URL, hash: sha256.Sum256(data)}
		if data, err = tgmedia.ChatPhoto(data); err != nil {
			return 0, err
		}
		api, err := c.waitAPI(ctx)
		if err != nil {
			return 0, err
		}
		file, err := uploader.NewUploader(api).FromBytes(ctx, "photo.jpg", data)
		if err != nil {
			return 0, fmt.Errorf("failed to upload the photo to Telegram: %w", err)
		}
		up := &tg.InputChatUploadedPhoto{}
		up.SetFile(file)
		photo = up
	}
	// The change's echo can reach another login before this call returns:
	// photoEcho waits for it, and finds the picture kept below.
	c.main.photoSets.RLock()
	resp, err := callWhenConnected(ctx, c, "change group photo", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		if input != nil {
			return api.ChannelsEditPhoto(ctx, &tg.ChannelsEditPhotoRequest{Channel: input, Photo: photo})
		}
		return api.MessagesEditChatPhoto(ctx, &tg.MessagesEditChatPhotoRequest{ChatID: peer.ID, Photo: photo})
	})
	var photoID int64
	if err == nil {
		if photoID = sentPhotoID(resp); photoID != 0 && sent != nil {
			c.main.photoSent.Put(photoID, *sent)
		}
	}
	c.main.photoSets.RUnlock()
	if err != nil {
		if tgerr.Is(err, "PHOTO_INVALID", "IMAGE_PROCESS_FAILED", "PHOTO_CROP_SIZE_SMALL") {
			return 0, errors.New("the picture was not taken by Telegram as the group's photo")
		}
		return 0, groupRightsError(err, "change the group's photo")
	}
	c.main.Sent(ctx, c.outbound(remote.OutboundGroupChange, msg.Portal, peer))
	c.feedUpdates(resp)
	return photoID, nil
}

// sentPhotoID finds the new photo in the updates of a photo change.
func sentPhotoID(resp tg.UpdatesClass) int64 {
	var (
		updates []tg.UpdateClass
		chats   []tg.ChatClass
	)
	switch r := resp.(type) {
	case *tg.Updates:
		updates, chats = r.Updates, r.Chats
	case *tg.UpdatesCombined:
		updates, chats = r.Updates, r.Chats
	}
	for _, u := range updates {
		var m tg.MessageClass
		switch v := u.(type) {
		case *tg.UpdateNewChannelMessage:
			m = v.Message
		case *tg.UpdateNewMessage:
			m = v.Message
		}
		if svc, ok := m.(*tg.MessageService); ok {
			if a, ok := svc.Action.(*tg.MessageActionChatEditPhoto); ok {
				return a.Photo.GetID()
			}
		}
	}
	for _, ch := range chats {
		var p tg.ChatPhotoClass
		switch v := ch.(type) {
		case *tg.Channel:
			p = v.Photo
		case *tg.Chat:
			p = v.Photo
		}
		if cp, ok := p.(*tg.ChatPhoto); ok {
			return cp.PhotoID
		}
	}
	return 0
}
