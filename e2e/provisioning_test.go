package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// provClient makes the plain HTTP calls an integration manager makes to
// bridgev2's provisioning API (/_matrix/provision/v3) on the gateway's
// appservice listener.
type provClient struct {
	t      *testing.T
	base   string
	userID string
	// auth is the Authorization header's value.
	auth string
}

// provAnswer is one answer: its status and its JSON body.
type provAnswer struct {
	Status int
	Body   []byte
}

func (a provAnswer) decode(t *testing.T, what string, out any) {
	t.Helper()
	if err := json.Unmarshal(a.Body, out); err != nil {
		t.Fatalf("%s: answer is not the JSON expected (%v): %s", what, err, a.Body)
	}
}

// errcode is the Matrix error code of an error answer.
func (a provAnswer) errcode() string {
	var e struct {
		ErrCode string `json:"errcode"`
	}
	_ = json.Unmarshal(a.Body, &e)
	return e.ErrCode
}

func (p *provClient) as(userID, auth string) *provClient {
	c := *p
	c.userID, c.auth = userID, auth
	return &c
}

// do calls method path (under /_matrix/provision/v3) with query (user_id
// added) and body (nil, or a value sent as JSON).
func (p *provClient) do(ctx context.Context, method, path string, query url.Values, body any) provAnswer {
	p.t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("user_id", p.userID)
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path+"?"+query.Encode(), rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	return provAnswer{Status: resp.StatusCode, Body: raw}
}

// ok calls like do and fails the test unless the status is want.
func (p *provClient) ok(ctx context.Context, want int, method, path string, query url.Values, body, out any) {
	p.t.Helper()
	a := p.do(ctx, method, path, query, body)
	if a.Status != want {
		p.t.Fatalf("%s %s as %s: HTTP %d, want %d: %s", method, path, p.userID, a.Status, want, a.Body)
	}
	if out != nil {
		a.decode(p.t, method+" "+path, out)
	}
}

// provStep is a login step as the provisioning API shows it.
type provStep struct {
	LoginID      string `json:"login_id"`
	Type         string `json:"type"`
	StepID       string `json:"step_id"`
	Instructions string `json:"instructions"`
	UserInput    *struct {
		Fields []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"fields"`
	} `json:"user_input"`
	DisplayAndWait *struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"display_and_wait"`
	Complete *struct {
		UserLoginID string `json:"user_login_id"`
	} `json:"complete"`
}

func (s provStep) String() string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

// wantInput checks that step asks for exactly one field of that ID.
func wantInput(t *testing.T, step provStep, stepID, field string) {
	t.Helper()
	if step.Type != "user_input" || step.StepID != stepID || step.UserInput == nil ||
		len(step.UserInput.Fields) != 1 || step.UserInput.Fields[0].ID != field || step.Instructions == "" {
		t.Fatalf("want a user_input step %s asking for %q with instructions, got %s", stepID, field, step)
	}
}

// wantComplete checks that step ends the login and returns the login's ID.
func wantComplete(t *testing.T, step provStep, prefix string) string {
	t.Helper()
	if step.Type != "complete" || step.Complete == nil || !strings.HasPrefix(step.Complete.UserLoginID, prefix) || step.Instructions == "" {
		t.Fatalf("want a complete step with a %s… login ID and instructions, got %s", prefix, step)
	}
	return step.Complete.UserLoginID
}

type provWhoami struct {
	Network struct {
		DisplayName string `json:"displayname"`
	} `json:"network"`
	LoginFlows []struct {
		ID string `json:"id"`
	} `json:"login_flows"`
	Homeserver string `json:"homeserver"`
	BridgeBot  string `json:"bridge_bot"`
	Logins     []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		State struct {
			StateEvent string `json:"state_event"`
		} `json:"state"`
	} `json:"logins"`
}

type provContact struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Identifiers []string `json:"identifiers"`
	MXID        string   `json:"mxid"`
	DMRoomID    string   `json:"dm_room_mxid"`
}

// TestProvisioningAPI: an integration manager drives both networks through
// the gateway's provisioning API with plain HTTP, authenticated by the
// shared secret (with ?user_id=) and by a Matrix OpenID token the user's
// client got from the homeserver: it lists both networks' login flows, logs
// a user in to Telegram by phone and code and to WhatsApp by QR code, logs a
// second user in to WhatsApp by pairing code, lists the logins, resolves a
// phone number and a @username, starts chats (encrypted portal rooms the
// user is invited to), lists contacts, searches by name, phone and
// @username, reads the capabilities, and logs out.
func TestProvisioningAPI(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, alicePhone, patPhone = "+33600000011", "+33600000012", "+33600000014"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", alicePhone: "Alice Outside", patPhone: "Pat Staff"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550021", "")

	secretBytes := make([]byte, 24)
	if _, err := rand.Read(secretBytes); err != nil {
		t.Fatal(err)
	}
	secret := hex.EncodeToString(secretBytes)
	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam", "pat"},
		GatewayPatch: func(doc *stack.YAMLDoc) error {
			if err := doc.Set("provisioning.shared_secret", secret); err != nil {
				return err
			}
			return doc.Set("provisioning.allow_matrix_auth", true)
		},
		// Dendrite serves /_matrix/federation/v1/openid/userinfo, where
		// an OpenID token is checked, only with federation on.
		DendritePatch: func(doc *stack.YAMLDoc) error { return doc.Set("global.disable_federation", false) },
	})
	sam := s.User("sam")
	ctx := s.Ctx()
	samID, patID := "@sam:"+s.Gateway.ServerName, "@pat:"+s.Gateway.ServerName
	base := &provClient{t: t, base: s.Gateway.URL + "/_matrix/provision/v3"}
	prov := base.as(samID, "Bearer "+secret)

	// Auth: none, a wrong secret, an OpenID token of someone else, then
	// the user's own OpenID token.
	if a := base.as(samID, "").do(ctx, "GET", "/whoami", nil, nil); a.Status != http.StatusUnauthorized || a.errcode() != "M_MISSING_TOKEN" {
		t.Errorf("no Authorization: HTTP %d %s, want 401 M_MISSING_TOKEN", a.Status, a.Body)
	}
	if a := base.as(samID, "Bearer "+secret+"x").do(ctx, "GET", "/whoami", nil, nil); a.Status != http.StatusUnauthorized || a.errcode() != "M_UNKNOWN_TOKEN" {
		t.Errorf("a wrong shared secret: HTTP %d %s, want 401 M_UNKNOWN_TOKEN", a.Status, a.Body)
	}
	tok, err := sam.OpenIDToken(ctx)
	if err != nil {
		t.Fatalf("OpenID token from the homeserver: %v", err)
	}
	if tok.AccessToken == "" || tok.MatrixServerName != s.Gateway.ServerName {
		t.Fatalf("OpenID token answer: token set %v, server %q", tok.AccessToken != "", tok.MatrixServerName)
	}
	openID := "Bearer openid:" + tok.AccessToken
	if a := base.as(patID, openID).do(ctx, "GET", "/whoami", nil, nil); a.Status != http.StatusUnauthorized || a.errcode() != "M_UNKNOWN_TOKEN" {
		t.Errorf("sam's OpenID token used for pat: HTTP %d %s, want 401 M_UNKNOWN_TOKEN", a.Status, a.Body)
	}
	var who provWhoami
	if a := base.as(samID, openID).do(ctx, "GET", "/whoami", nil, nil); a.Status != http.StatusOK {
		t.Errorf("whoami with sam's own OpenID token: HTTP %d %s, want 200", a.Status, a.Body)
	} else if a.decode(t, "whoami", &who); who.BridgeBot != s.BotID || len(who.Logins) != 0 || who.Network.DisplayName != "Passerelle" {
		t.Errorf("whoami with an OpenID token: bot %q, %d logins, network %q", who.BridgeBot, len(who.Logins), who.Network.DisplayName)
	}

	// Login flows: both networks', QR and pairing code included.
	var flows struct {
		Flows []struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"flows"`
	}
	prov.ok(ctx, http.StatusOK, "GET", "/login/flows", nil, nil, &flows)
	var flowIDs []string
	for _, f := range flows.Flows {
		flowIDs = append(flowIDs, f.ID)
		if f.Name == "" || f.Description == "" {
			t.Errorf("flow %s has no name or description: %+v", f.ID, f)
		}
	}
	for _, want := range []string{"whatsapp-qr", "whatsapp-phone", "telegram-phone", "telegram-qr"} {
		if !slices.Contains(flowIDs, want) {
			t.Errorf("login flows %v lack %s", flowIDs, want)
		}
	}
	if a := prov.do(ctx, "POST", "/login/start/signal-qr", nil, nil); a.Status != http.StatusBadRequest && a.Status != http.StatusNotFound {
		t.Errorf("a flow no network offers: HTTP %d %s, want 400 or 404", a.Status, a.Body)
	}

	// Telegram by phone: start, phone, the code the simulator sent.
	start := time.Now()
	var step provStep
	prov.ok(ctx, http.StatusOK, "POST", "/login/start/telegram-phone", nil, nil, &step)
	wantInput(t, step, "net.passerelle.telegram.phone", "phone")
	loginPath := func(st provStep) string { return "/login/step/" + st.LoginID + "/" + st.StepID + "/" + st.Type }
	prov.ok(ctx, http.StatusOK, "POST", loginPath(step), nil, map[string]string{"phone": "+15550021"}, &step)
	wantInput(t, step, "net.passerelle.telegram.code", "code")
	code, ok := tg.LastCode("+15550021")
	if !ok {
		t.Fatal("the simulator issued no login code")
	}
	prov.ok(ctx, http.StatusOK, "POST", loginPath(step), nil, map[string]string{"code": code}, &step)
	tgLogin := wantComplete(t, step, "")
	t.Logf("Telegram phone login through the provisioning API done in %s", time.Since(start).Round(time.Millisecond))
	if tg.Authorizations(tgStaff.ID) != 1 {
		t.Errorf("the Telegram account has %d authorizations after the login, want 1", tg.Authorizations(tgStaff.ID))
	}

	// WhatsApp by QR code: the phone scans the data of the QR step.
	start = time.Now()
	prov.ok(ctx, http.StatusOK, "POST", "/login/start/whatsapp-qr", nil, nil, &step)
	if step.Type != "display_and_wait" || step.DisplayAndWait == nil || step.DisplayAndWait.Type != "qr" || step.DisplayAndWait.Data == "" {
		t.Fatalf("whatsapp-qr first step: %s", step)
	}
	for step.Type == "display_and_wait" {
		if err = wa.ScanQR(ctx, staffPhone, step.DisplayAndWait.Data); err != nil {
			t.Fatalf("the phone could not scan the QR code of the provisioning answer: %v", err)
		}
		prov.ok(ctx, http.StatusOK, "POST", loginPath(step), nil, nil, &step)
	}
	waLogin := wantComplete(t, step, "")
	t.Logf("WhatsApp QR login through the provisioning API done in %s", time.Since(start).Round(time.Millisecond))
	if acc, _ := wa.Account(staffPhone); len(acc.Devices()) != 1 {
		t.Errorf("the WhatsApp account has %d linked devices, want 1", len(acc.Devices()))
	}

	// WhatsApp by pairing code, for pat.
	provPat := base.as(patID, "Bearer "+secret)
	provPat.ok(ctx, http.StatusOK, "POST", "/login/start/whatsapp-phone", nil, nil, &step)
	wantInput(t, step, "net.passerelle.whatsapp.phone", "phone")
	provPat.ok(ctx, http.StatusOK, "POST", loginPath(step), nil, map[string]string{"phone": patPhone}, &step)
	if step.Type != "display_and_wait" || step.DisplayAndWait == nil || step.DisplayAndWait.Type != "code" || !pairingCodeRe.MatchString(step.DisplayAndWait.Data) {
		t.Fatalf("whatsapp-phone after the phone number: want a display_and_wait code step with a XXXX-XXXX code, got %s", step)
	}
	if err = wa.EnterPairingCode(ctx, patPhone, step.DisplayAndWait.Data); err != nil {
		t.Fatalf("the phone refused the pairing code of the provisioning answer: %v", err)
	}
	provPat.ok(ctx, http.StatusOK, "POST", loginPath(step), nil, nil, &step)
	patLogin := wantComplete(t, step, "")

	// Logins: sam has both, pat has one, each sees only their own.
	var logins struct {
		LoginIDs []string `json:"login_ids"`
	}
	prov.ok(ctx, http.StatusOK, "GET", "/logins", nil, nil, &logins)
	if len(logins.LoginIDs) != 2 || !slices.Contains(logins.LoginIDs, tgLogin) || !slices.Contains(logins.LoginIDs, waLogin) {
		t.Errorf("sam's logins %v, want %s and %s", logins.LoginIDs, tgLogin, waLogin)
	}
	provPat.ok(ctx, http.StatusOK, "GET", "/logins", nil, nil, &logins)
	if !slices.Equal(logins.LoginIDs, []string{patLogin}) {
		t.Errorf("pat's logins %v, want [%s]", logins.LoginIDs, patLogin)
	}
	if a := provPat.do(ctx, "GET", "/resolve_identifier/"+url.PathEscape(alicePhone), url.Values{"login_id": {waLogin}}, nil); a.Status != http.StatusNotFound {
		t.Errorf("pat using sam's login: HTTP %d %s, want 404", a.Status, a.Body)
	}
	eventually(ctx, t, "whoami shows both of sam's logins connected", func() bool {
		prov.ok(ctx, http.StatusOK, "GET", "/whoami", nil, nil, &who)
		connected := 0
		for _, l := range who.Logins {
			if l.State.StateEvent == "CONNECTED" && l.Name != "" {
				connected++
			}
		}
		return connected == 2
	})

	// Resolve: a phone on WhatsApp, a @username and a phone on Telegram.
	onWA := url.Values{"login_id": {waLogin}}
	onTG := url.Values{"login_id": {tgLogin}}
	var alice provContact
	prov.ok(ctx, http.StatusOK, "GET", "/resolve_identifier/"+url.PathEscape(alicePhone), onWA, nil, &alice)
	if alice.ID == "" || !strings.Contains(alice.MXID, "whatsapp") || alice.DMRoomID != "" {
		t.Errorf("WhatsApp phone resolved to %+v: want an ID, a whatsapp ghost and no room yet", alice)
	}
	if a := prov.do(ctx, "GET", "/resolve_identifier/"+url.PathEscape("+33699999999"), onWA, nil); a.Status < 400 || a.Status >= 500 {
		t.Errorf("a phone not on WhatsApp: HTTP %d %s, want a 4xx", a.Status, a.Body)
	}
	var tgAlice provContact
	prov.ok(ctx, http.StatusOK, "GET", "/resolve_identifier/"+url.PathEscape("@"+tgContact.Username), onTG, nil, &tgAlice)
	if !strings.Contains(tgAlice.Name, "Alice") || !strings.Contains(tgAlice.MXID, "telegram") || tgAlice.DMRoomID != "" {
		t.Errorf("@%s resolved to %+v: want Alice's name and a telegram ghost", tgContact.Username, tgAlice)
	}
	var byPhone provContact
	prov.ok(ctx, http.StatusOK, "GET", "/resolve_identifier/"+url.PathEscape("+"+tgContact.Phone), onTG, nil, &byPhone)
	if byPhone.ID != tgAlice.ID {
		t.Errorf("Telegram phone +%s resolved to %q, the @username to %q", tgContact.Phone, byPhone.ID, tgAlice.ID)
	}

	// Start chats: a portal room each, encrypted, with sam invited.
	for _, c := range []struct {
		network, identifier string
		query               url.Values
		ghost               string
	}{
		{"WhatsApp", alicePhone, onWA, alice.MXID},
		{"Telegram", "@" + tgContact.Username, onTG, tgAlice.MXID},
	} {
		var dm provContact
		prov.ok(ctx, http.StatusCreated, "POST", "/create_dm/"+url.PathEscape(c.identifier), c.query, nil, &dm)
		if dm.DMRoomID == "" || dm.MXID != c.ghost {
			t.Fatalf("%s create_dm: %+v, want a room and the ghost %s", c.network, dm, c.ghost)
		}
		// create_dm answers once the room exists and sam is invited.
		if err := sam.Join(ctx, dm.DMRoomID); err != nil {
			t.Fatalf("%s portal %s: sam cannot join it: %v", c.network, dm.DMRoomID, err)
		}
		if err := sam.WaitMember(ctx, dm.DMRoomID, c.ghost, "join", 30*time.Second); err != nil {
			t.Errorf("%s portal %s: the ghost %s is not in it: %v", c.network, dm.DMRoomID, c.ghost, err)
		}
		if enc, err := sam.RoomState(ctx, dm.DMRoomID, "m.room.encryption", ""); err != nil || enc == nil {
			t.Errorf("%s portal %s is not encrypted: %v", c.network, dm.DMRoomID, err)
		}
		var again provContact
		prov.ok(ctx, http.StatusOK, "POST", "/create_dm/"+url.PathEscape(c.identifier), c.query, nil, &again)
		if again.DMRoomID != dm.DMRoomID {
			t.Errorf("%s create_dm twice: rooms %s then %s, want the same", c.network, dm.DMRoomID, again.DMRoomID)
		}
	}

	// Contacts and search, per network. WhatsApp's contact store knows
	// Alice once she has written (her push name); Telegram's contact list
	// is the account's.
	if _, err = wa.SendText(ctx, alicePhone, staffPhone, "hello from Alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		network        string
		query          url.Values
		want           string
		search, byName string
	}{
		{"Telegram", onTG, tgAlice.ID, "@" + tgContact.Username, "alice"},
		{"WhatsApp", onWA, alice.ID, alicePhone, "alice"},
	} {
		var contacts struct {
			Contacts []provContact `json:"contacts"`
		}
		eventually(ctx, t, c.network+" contacts list Alice with her ghost and name", func() bool {
			prov.ok(ctx, http.StatusOK, "GET", "/contacts", c.query, nil, &contacts)
			return slices.ContainsFunc(contacts.Contacts, func(x provContact) bool {
				return x.ID == c.want && x.MXID != "" && strings.Contains(x.Name, "Alice")
			})
		})
		if slices.ContainsFunc(contacts.Contacts, func(x provContact) bool { return x.ID == "" || x.MXID == "" }) {
			t.Errorf("%s contacts with no ID or ghost: %+v", c.network, contacts.Contacts)
		}
		for _, q := range []string{c.byName, c.search} {
			var results struct {
				Results []provContact `json:"results"`
			}
			prov.ok(ctx, http.StatusOK, "POST", "/search_users", c.query, map[string]string{"query": q}, &results)
			if len(results.Results) != 1 || results.Results[0].ID != c.want || results.Results[0].MXID == "" {
				t.Errorf("%s search %q: %+v, want Alice (%s) alone", c.network, q, results.Results, c.want)
			}
		}
		var none struct {
			Results []provContact `json:"results"`
		}
		prov.ok(ctx, http.StatusOK, "POST", "/search_users", c.query, map[string]string{"query": "nobody-like-this"}, &none)
		if len(none.Results) != 0 {
			t.Errorf("%s search for nobody: %+v", c.network, none.Results)
		}
	}
	var caps struct {
		ResolveIdentifier map[string]bool `json:"resolve_identifier"`
	}
	prov.ok(ctx, http.StatusOK, "GET", "/capabilities", nil, nil, &caps)
	for _, k := range []string{"create_dm", "lookup_phone", "lookup_username", "contact_list", "search"} {
		if !caps.ResolveIdentifier[k] {
			t.Errorf("capabilities resolve_identifier.%s is not true: %v", k, caps.ResolveIdentifier)
		}
	}

	// Logout: Telegram's session ends on the network, WhatsApp stays.
	if a := prov.do(ctx, "POST", "/logout/"+url.PathEscape(patLogin), nil, map[string]string{}); a.Status != http.StatusNotFound {
		t.Errorf("sam logging out pat's login: HTTP %d %s, want 404", a.Status, a.Body)
	}
	prov.ok(ctx, http.StatusOK, "POST", "/logout/"+url.PathEscape(tgLogin), nil, map[string]string{}, nil)
	prov.ok(ctx, http.StatusOK, "GET", "/logins", nil, nil, &logins)
	if !slices.Equal(logins.LoginIDs, []string{waLogin}) {
		t.Errorf("sam's logins after the Telegram logout: %v, want [%s]", logins.LoginIDs, waLogin)
	}
	eventually(ctx, t, "the Telegram session is revoked on the network", func() bool { return tg.Authorizations(tgStaff.ID) == 0 })
	if a := prov.do(ctx, "GET", "/resolve_identifier/"+url.PathEscape("@"+tgContact.Username), onTG, nil); a.Status != http.StatusNotFound {
		t.Errorf("resolving with the logged-out login: HTTP %d %s, want 404", a.Status, a.Body)
	}
}
