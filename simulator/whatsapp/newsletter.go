package wasim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.mau.fi/util/jsontime"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Newsletters (WhatsApp channels), as whatsmeow speaks to them:
//
//   - metadata goes through w:mex GraphQL IQs: <iq xmlns="w:mex" type="get"
//     to="s.whatsapp.net"><query query_id="…">{"variables":{…}}</query></iq>,
//     answered with <result>{"data":{"xwa2_…":…}}</result> (JSON; whatsmeow
//     also knows an "argo" binary format, which it cannot decode today).
//     The query ID names the operation; a web client and a desktop client use
//     different IDs for the same one (whatsmeow's convertQueryID), and both
//     are understood here;
//   - channel media are not encrypted: a post's file message carries no
//     media key and no encrypted hash (whatsmeow then downloads it as is);
//   - posts reach every follower's devices as <message from="…@newsletter"
//     id=… server_id=… t=… type="text"> with a <plaintext> child: the
//     waE2E.Message protobuf in clear (channels are not end-to-end
//     encrypted); an edit carries <meta msg_edit_t=… original_msg_t=…> and the
//     new content under the original ID;
//   - following and unfollowing from another device arrive as
//     <notification type="mex"><update>{"data":{"xwa2_notify_newsletter_on_join":
//     metadata}}</update></notification> (…_on_leave: {id, role});
//   - <iq xmlns="newsletter"> asks for posts (<messages type="jid" jid=…
//     count=… before=…>), reaction and view count updates (<message_updates>)
//     and live updates of those counts (<live_updates>, answered with a
//     duration in seconds).

// GraphQL query IDs whatsmeow sends (web client, then desktop client).
var (
	mexFetchNewsletter      = []string{"6563316087068696", "9779843322044422"}
	mexSubscribedNewsletter = []string{"6388546374527196", "8621797084555037"}
	mexFollowNewsletter     = []string{"9926858900719341"}
	mexUnfollowNewsletter   = []string{"6392786840836363", "8782612271820087"}
)

// Errors of the newsletter control methods.
var (
	ErrNoNewsletter = errors.New("no such newsletter")
	ErrNotFollower  = errors.New("account does not follow the newsletter")
)

// maxNewsletterPosts caps the posts a newsletter keeps for GetNewsletterMessages.
const maxNewsletterPosts = 1000

// Newsletter is a simulated WhatsApp channel.
type Newsletter struct {
	JID         types.JID
	Name        string
	Description string
	Owner       string   // phone number of the creator
	Followers   []string // phone numbers
	Created     time.Time
	nameT       time.Time
	descT       time.Time
	invite      string
	nextServer  int
	posts       []newsletterPost
}

type newsletterPost struct {
	serverID int
	id       string
	t        time.Time
	typ      string
	plain    []byte
}

// CreateNewsletter creates a channel owned by owner and returns its JID
// ("…@newsletter").
func (s *Server) CreateNewsletter(ctx context.Context, owner, name, description string) (string, error) {
	oacc, err := s.account(owner)
	if err != nil {
		return "", err
	}
	now := s.now()
	s.mu.Lock()
	n := &Newsletter{
		JID:  types.NewJID(strconv.FormatUint(s.nextGroup, 10), types.NewsletterServer),
		Name: name, Description: description, Owner: oacc.Phone,
		Created: now, nameT: now, descT: now, invite: NewMessageID(), nextServer: 100,
	}
	s.nextGroup++
	if s.newsletters == nil {
		s.newsletters = map[string]*Newsletter{}
	}
	s.newsletters[n.JID.User] = n
	s.mu.Unlock()
	return n.JID.String(), ctx.Err()
}

func (s *Server) newsletterByJID(jid string) (*Newsletter, error) {
	parsed, err := types.ParseJID(jid)
	if err != nil || parsed.Server != types.NewsletterServer {
		return nil, ErrNoNewsletter
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.newsletters[parsed.User]
	if n == nil {
		return nil, ErrNoNewsletter
	}
	return n, nil
}

// NewsletterInfo returns a copy of a newsletter.
func (s *Server) NewsletterInfo(jid string) (Newsletter, bool) {
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return Newsletter{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := *n
	out.Followers = slices.Clone(n.Followers)
	out.posts = nil
	return out, true
}

// FollowNewsletter makes phone follow a newsletter from their phone: their
// linked devices get the mex join notification (events.NewsletterJoin).
func (s *Server) FollowNewsletter(ctx context.Context, phone, jid string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return err
	}
	s.follow(acc, n)
	s.notifyMex(acc, nil, "xwa2_notify_newsletter_on_join", s.newsletterMetadata(n, acc))
	return ctx.Err()
}

// UnfollowNewsletter makes phone stop following a newsletter from their
// phone: their linked devices get the mex leave notification
// (events.NewsletterLeave).
func (s *Server) UnfollowNewsletter(ctx context.Context, phone, jid string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return err
	}
	if !s.unfollow(acc, n) {
		return ErrNotFollower
	}
	s.notifyMex(acc, nil, "xwa2_notify_newsletter_on_leave", map[string]any{"id": n.JID, "role": types.NewsletterRoleSubscriber})
	return ctx.Err()
}

func (s *Server) follow(acc *Account, n *Newsletter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(n.Followers, acc.Phone) {
		n.Followers = append(n.Followers, acc.Phone)
	}
}

func (s *Server) unfollow(acc *Account, n *Newsletter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(n.Followers, acc.Phone)
	if i < 0 {
		return false
	}
	n.Followers = slices.Delete(n.Followers, i, i+1)
	return true
}

// UpdateNewsletter changes a newsletter's name and description (an empty
// string keeps the current one). Like WhatsApp, followers are not notified:
// their clients read the metadata again.
func (s *Server) UpdateNewsletter(ctx context.Context, jid, name, description string) error {
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	if name != "" {
		n.Name, n.nameT = name, now
	}
	if description != "" {
		n.Description, n.descT = description, now
	}
	s.mu.Unlock()
	return ctx.Err()
}

// SetNewsletterPicture sets (nil: removes) a newsletter's picture, served
// like profile pictures and given in its metadata.
func (s *Server) SetNewsletterPicture(ctx context.Context, jid string, data []byte) error {
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if data == nil {
		delete(s.pictures, n.JID.String())
		s.mu.Unlock()
		return ctx.Err()
	}
	id := NewMessageID()
	s.pictures[n.JID.String()] = picture{id: id, size: len(data)}
	s.mu.Unlock()
	s.media.putPicture(id, data)
	return ctx.Err()
}

// PostNewsletterText posts text to a newsletter; see PostNewsletter.
func (s *Server) PostNewsletterText(ctx context.Context, jid, text string) (string, error) {
	return s.PostNewsletter(ctx, jid, &waE2E.Message{Conversation: proto.String(text)})
}

// PostNewsletter posts msg to a newsletter (by its owner, whose devices
// are not simulated): every follower's linked devices get it in clear
// (plaintext). It returns the message ID.
func (s *Server) PostNewsletter(ctx context.Context, jid string, msg *waE2E.Message) (string, error) {
	return s.postNewsletter(ctx, jid, NewMessageID(), msg, time.Time{})
}

// PostNewsletterImage posts an image with a caption to a newsletter. Like
// a channel's media, the file is stored unencrypted: the message carries
// no media key and no encrypted hash, only the file's own SHA-256.
func (s *Server) PostNewsletterImage(ctx context.Context, jid string, data []byte, mime, caption string) (string, error) {
	path, err := s.media.store(bytes.NewReader(data), "image", nil)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return s.PostNewsletter(ctx, jid, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL:        proto.String("https://" + MediaHost + path),
		DirectPath: proto.String(path),
		Mimetype:   proto.String(mime),
		Caption:    proto.String(caption),
		FileSHA256: sum[:],
		FileLength: proto.Uint64(uint64(len(data))),
	}})
}

// EditNewsletterPost replaces the content of a post, as a channel admin's
// edit: followers get the new content under the post's ID with an edit
// timestamp (events.Message with NewsletterMeta.EditTS set).
func (s *Server) EditNewsletterPost(ctx context.Context, jid, id, text string) error {
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var orig time.Time
	for _, p := range n.posts {
		if p.id == id {
			orig = p.t
		}
	}
	s.mu.Unlock()
	if orig.IsZero() {
		return ErrNoSuchMessage
	}
	_, err = s.postNewsletter(ctx, jid, id, &waE2E.Message{Conversation: proto.String(text)}, orig)
	return err
}

func (s *Server) postNewsletter(ctx context.Context, jid, id string, msg *waE2E.Message, editOf time.Time) (string, error) {
	n, err := s.newsletterByJID(jid)
	if err != nil {
		return "", err
	}
	plain, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	now := s.now()
	typ := messageType(msg)
	s.mu.Lock()
	post := newsletterPost{serverID: n.nextServer, id: id, t: now, typ: typ, plain: plain}
	n.nextServer++
	if editOf.IsZero() {
		n.posts = append(n.posts, post)
		if len(n.posts) > maxNewsletterPosts {
			n.posts = n.posts[len(n.posts)-maxNewsletterPosts:]
		}
	} else {
		for i := range n.posts {
			if n.posts[i].id == id {
				post.serverID = n.posts[i].serverID
				n.posts[i].plain = plain
			}
		}
	}
	var devs []*companion
	for _, p := range n.Followers {
		if acc := s.accounts[p]; acc != nil {
			devs = append(devs, acc.linkedDevicesLocked()...)
		}
	}
	s.mu.Unlock()
	node := newsletterMessageNode(post)
	node.Attrs["from"] = n.JID
	if !editOf.IsZero() {
		node.Attrs["edit"] = string(types.EditAttributeAdminEdit)
		node.Content = append(node.GetChildren(), waBinary.Node{Tag: "meta", Attrs: waBinary.Attrs{
			"msg_edit_t": now.UnixMilli(), "original_msg_t": editOf.Unix(),
		}})
	}
	for _, d := range devs {
		s.pushToDevice(d, node)
	}
	return id, ctx.Err()
}

// newsletterMessageNode is a post as both live delivery and
// GetNewsletterMessages give it.
func newsletterMessageNode(p newsletterPost) waBinary.Node {
	return waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
		"id": p.id, "server_id": p.serverID, "t": p.t.Unix(), "type": p.typ,
	}, Content: []waBinary.Node{{Tag: "plaintext", Attrs: waBinary.Attrs{}, Content: p.plain}}}
}

// newsletterMetadata is the GraphQL form of a newsletter, with the viewer
// part for acc (nil: none, as for an invite lookup).
func (s *Server) newsletterMetadata(n *Newsletter, acc *Account) *types.NewsletterMetadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := &types.NewsletterMetadata{
		ID:    n.JID,
		State: types.WrappedNewsletterState{Type: "ACTIVE"},
		ThreadMeta: types.NewsletterThreadMetadata{
			CreationTime:      jsontime.UnixString{Time: n.Created},
			InviteCode:        n.invite,
			Name:              types.NewsletterText{Text: n.Name, ID: strconv.FormatInt(n.nameT.UnixMicro(), 10), UpdateTime: jsontime.UnixMicroString{Time: n.nameT}},
			Description:       types.NewsletterText{Text: n.Description, ID: strconv.FormatInt(n.descT.UnixMicro(), 10), UpdateTime: jsontime.UnixMicroString{Time: n.descT}},
			SubscriberCount:   len(n.Followers),
			VerificationState: "UNVERIFIED",
			Settings:          types.NewsletterSettings{ReactionCodes: types.NewsletterReactionSettings{Value: types.NewsletterReactionsModeAll}},
		},
	}
	if pic, ok := s.pictures[n.JID.String()]; ok {
		md.ThreadMeta.Picture = &types.ProfilePictureInfo{URL: pictureURL(pic.id), ID: pic.id, Type: "IMAGE", DirectPath: "/pp/" + pic.id}
		md.ThreadMeta.Preview = types.ProfilePictureInfo{URL: pictureURL(pic.id), ID: pic.id, Type: "PREVIEW", DirectPath: "/pp/" + pic.id}
	}
	if acc != nil {
		role := types.NewsletterRoleGuest
		if acc.Phone == n.Owner {
			role = types.NewsletterRoleOwner
		} else if slices.Contains(n.Followers, acc.Phone) {
			role = types.NewsletterRoleSubscriber
		}
		md.ViewerMeta = &types.NewsletterViewerMetadata{Mute: types.NewsletterMuteOff, Role: role}
	}
	return md
}

// notifyMex sends a mex notification with one update {"data":{op: value}}
// to the account's linked devices (but skip).
func (s *Server) notifyMex(acc *Account, skip *companion, op string, value any) {
	body, err := json.Marshal(map[string]any{"data": map[string]any{op: value}})
	if err != nil {
		return
	}
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": serverJID(), "type": "mex", "id": NewMessageID(), "t": s.now().Unix(),
	}, Content: []waBinary.Node{{Tag: "update", Attrs: waBinary.Attrs{"op_name": op}, Content: body}}}
	s.mu.Lock()
	devs := acc.linkedDevicesLocked()
	s.mu.Unlock()
	for _, d := range devs {
		if d != skip {
			s.pushToDevice(d, node)
		}
	}
}

// handleMexIQ answers the GraphQL queries of newsletters.
func (s *Server) handleMexIQ(c *conn, iq *waBinary.Node, acc *Account, dev *companion, query waBinary.Node) {
	queryID := query.AttrGetter().OptionalString("query_id")
	var req struct {
		Variables struct {
			NewsletterID string `json:"newsletter_id"`
			Input        struct {
				Key  string `json:"key"`
				Type string `json:"type"`
			} `json:"input"`
		} `json:"variables"`
	}
	if raw, ok := query.Content.([]byte); !ok || json.Unmarshal(raw, &req) != nil {
		c.iqError(iq, 400, "bad-request")
		return
	}
	var data map[string]any
	var gqlErr string
	switch {
	case slices.Contains(mexSubscribedNewsletter, queryID):
		s.mu.Lock()
		var list []*Newsletter
		for _, n := range s.newsletters {
			if slices.Contains(n.Followers, acc.Phone) {
				list = append(list, n)
			}
		}
		s.mu.Unlock()
		slices.SortFunc(list, func(a, b *Newsletter) int { return a.Created.Compare(b.Created) })
		out := make([]*types.NewsletterMetadata, 0, len(list))
		for _, n := range list {
			out = append(out, s.newsletterMetadata(n, acc))
		}
		data = map[string]any{"xwa2_newsletter_subscribed": out}
	case slices.Contains(mexFetchNewsletter, queryID):
		var n *Newsletter
		if req.Variables.Input.Type == string(types.NewsletterKeyTypeInvite) {
			s.mu.Lock()
			for _, cand := range s.newsletters {
				if cand.invite == req.Variables.Input.Key {
					n = cand
				}
			}
			s.mu.Unlock()
		} else {
			n, _ = s.newsletterByJID(req.Variables.Input.Key)
		}
		if n == nil {
			gqlErr = "newsletter not found"
			break
		}
		data = map[string]any{"xwa2_newsletter": s.newsletterMetadata(n, acc)}
	case slices.Contains(mexFollowNewsletter, queryID), slices.Contains(mexUnfollowNewsletter, queryID):
		n, err := s.newsletterByJID(req.Variables.NewsletterID)
		if err != nil {
			gqlErr = "newsletter not found"
			break
		}
		if slices.Contains(mexFollowNewsletter, queryID) {
			s.follow(acc, n)
			// The account's other devices learn it as a join.
			s.notifyMex(acc, dev, "xwa2_notify_newsletter_on_join", s.newsletterMetadata(n, acc))
			data = map[string]any{"xwa2_newsletter_join_v2": map[string]any{"id": n.JID}}
		} else {
			s.unfollow(acc, n)
			s.notifyMex(acc, dev, "xwa2_notify_newsletter_on_leave", map[string]any{"id": n.JID, "role": types.NewsletterRoleSubscriber})
			data = map[string]any{"xwa2_newsletter_leave_v2": map[string]any{"id": n.JID}}
		}
	default:
		c.iqError(iq, 501, "feature-not-implemented")
		return
	}
	resp := map[string]any{"data": data}
	if gqlErr != "" {
		resp = map[string]any{"data": nil, "errors": []map[string]any{{
			"message": gqlErr, "extensions": map[string]any{"error_code": 404, "is_retryable": false, "severity": "CRITICAL"},
		}}}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		c.iqError(iq, 500, "internal-server-error")
		return
	}
	c.iqResult(iq, waBinary.Node{Tag: "result", Content: body})
}

// handleNewsletterIQ answers <iq xmlns="newsletter">: posts, count updates
// and live updates.
func (s *Server) handleNewsletterIQ(c *conn, iq *waBinary.Node, child waBinary.Node) {
	ag := child.AttrGetter()
	switch child.Tag {
	case "messages":
		jid, _ := child.Attrs["jid"].(types.JID)
		n, err := s.newsletterByJID(jid.String())
		if err != nil {
			c.iqError(iq, 404, "item-not-found")
			return
		}
		count, before := ag.OptionalInt("count"), ag.OptionalInt("before")
		if count <= 0 || count > 100 {
			count = 100
		}
		s.mu.Lock()
		var nodes []waBinary.Node
		for i := len(n.posts) - 1; i >= 0 && len(nodes) < count; i-- {
			if before == 0 || n.posts[i].serverID < before {
				nodes = append(nodes, newsletterMessageNode(n.posts[i]))
			}
		}
		s.mu.Unlock()
		slices.Reverse(nodes)
		c.iqResult(iq, waBinary.Node{Tag: "messages", Attrs: waBinary.Attrs{"jid": n.JID}, Content: nodes})
	case "message_updates":
		c.iqResult(iq, waBinary.Node{Tag: "message_updates", Content: []waBinary.Node{{Tag: "messages"}}})
	case "live_updates":
		c.iqResult(iq, waBinary.Node{Tag: "live_updates", Attrs: waBinary.Attrs{"duration": 300}})
	default:
		c.iqError(iq, 501, "feature-not-implemented")
	}
}

// newsletterRoutes adds the newsletter and community routes to the control
// API: create a newsletter, follow and unfollow it, post to it, read it
// back; create a community.
func (s *Server) newsletterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /newsletters", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Owner, Name, Description string }
		if !readJSON(w, r, &req) {
			return
		}
		jid, err := s.CreateNewsletter(r.Context(), req.Owner, req.Name, req.Description)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"jid": jid})
	})
	mux.HandleFunc("POST /newsletters/follow", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, Newsletter string }
		if readJSON(w, r, &req) {
			writeResult(w, s.FollowNewsletter(r.Context(), req.Phone, req.Newsletter))
		}
	})
	mux.HandleFunc("POST /newsletters/unfollow", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, Newsletter string }
		if readJSON(w, r, &req) {
			writeResult(w, s.UnfollowNewsletter(r.Context(), req.Phone, req.Newsletter))
		}
	})
	mux.HandleFunc("POST /newsletters/post", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Newsletter, Text string }
		if !readJSON(w, r, &req) {
			return
		}
		id, err := s.PostNewsletterText(r.Context(), req.Newsletter, req.Text)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	})
	mux.HandleFunc("GET /newsletters/{jid}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := s.NewsletterInfo(r.PathValue("jid"))
		if !ok {
			writeError(w, ErrNoNewsletter)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"jid": n.JID.String(), "name": n.Name, "description": n.Description, "owner": n.Owner, "followers": n.Followers,
		})
	})
	mux.HandleFunc("POST /communities", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Owner, Name  string
			Participants []string
		}
		if !readJSON(w, r, &req) {
			return
		}
		community, announcements, err := s.CreateCommunity(r.Context(), req.Owner, req.Name, req.Participants)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"jid": community, "announcements": announcements})
	})
}
