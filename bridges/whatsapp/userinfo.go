package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// GetUserInfo implements bridgev2.NetworkAPI: the ghost's name from the
// address book, the business name or the push name (both the phone and the
// LID form of the user are looked up).
func (cl *Client) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	jid, err := waid.ParseUserID(ghost.ID)
	if err != nil {
		return nil, err
	}
	if jid.Server == types.NewsletterServer {
		return cl.newsletterUserInfo(ctx, jid), nil
	}
	contact := cl.contact(ctx, jid)
	params := DisplaynameParams{
		PushName:     contact.PushName,
		ContactName:  contact.FullName,
		FirstName:    contact.FirstName,
		BusinessName: contact.BusinessName,
	}
	info := &bridgev2.UserInfo{}
	if jid.Server == types.DefaultUserServer {
		params.Phone = "+" + jid.User
		info.Identifiers = []string{"tel:+" + jid.User}
	}
	name := cl.main.Config.FormatDisplayname(params)
	info.Name = &name
	info.Avatar = cl.avatarOf(ctx, jid)
	info.ExtraUpdates = func(_ context.Context, g *bridgev2.Ghost) bool {
		meta.Get[waid.GhostMetadata](g.Metadata).LastSync = time.Now().Unix()
		return true
	}
	return info, nil
}

// contact merges what the store knows about the user under either address.
func (cl *Client) contact(ctx context.Context, jid types.JID) types.ContactInfo {
	wa := cl.client()
	if wa == nil || wa.Store == nil || wa.Store.Contacts == nil {
		return types.ContactInfo{}
	}
	out, _ := wa.Store.Contacts.GetContact(ctx, jid)
	alt, err := wa.Store.GetAltJID(ctx, jid)
	if err != nil || alt.IsEmpty() {
		if out.PushName == "" {
			// Seen on a message or in a history sync before whatsmeow's
			// contact store has it (it writes in the background).
			out.PushName = cl.rememberedPushName(jid.ToNonAD())
		}
		return out
	}
	other, _ := wa.Store.Contacts.GetContact(ctx, alt)
	for _, f := range []struct{ dst, src *string }{
		{&out.PushName, &other.PushName}, {&out.FullName, &other.FullName},
		{&out.FirstName, &other.FirstName}, {&out.BusinessName, &other.BusinessName},
	} {
		if *f.dst == "" {
			*f.dst = *f.src
		}
	}
	if out.PushName == "" {
		out.PushName = cl.rememberedPushName(jid.ToNonAD(), alt.ToNonAD())
	}
	return out
}
