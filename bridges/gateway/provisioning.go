package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// provisioningPrefix is where bridgev2's provisioning API lives on the
// appservice listener.
const provisioningPrefix = "/_matrix/provision/"

// openIDCheckTimeout bounds one OpenID check against the homeserver.
const openIDCheckTimeout = 20 * time.Second

// routeProvisioningOpenID makes the provisioning API accept Matrix OpenID
// tokens ("Authorization: Bearer openid:<token>") of users of the bridge's
// own homeserver by asking that homeserver, at homeserver.address, who the
// token belongs to (GET /_matrix/federation/v1/openid/userinfo).
//
// bridgev2 checks an OpenID token by server discovery of the user's server
// name (.well-known, SRV, then port 8448 over TLS): a homeserver that the
// bridge reaches only at homeserver.address (no federation listener, or
// federation not reachable from the bridge's host) refuses every OpenID
// token. Tokens of other servers' users, the shared secret and Matrix access
// tokens are left to bridgev2 unchanged. Call it after the Matrix connector
// started (it registers the provisioning route then); Init keeps the
// connector, since the gateway's binary wraps it afterwards.
func (gw *Gateway) routeProvisioningOpenID() {
	if gw.Bridge == nil {
		return
	}
	mc := gw.matrixConn
	if mc == nil || mc.AS == nil || mc.AS.Router == nil || mc.Config == nil {
		return
	}
	cfg := mc.Config
	secret := cfg.Provisioning.SharedSecret
	if len(secret) < 16 || !cfg.Provisioning.AllowMatrixAuth {
		// The API is off, or Matrix auth is: bridgev2 answers as it should.
		return
	}
	probe := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: provisioningPrefix + "v3/whoami"}}
	inner, pattern := mc.AS.Router.Handler(probe)
	if pattern != provisioningPrefix {
		gw.Bridge.Log.Warn().Str("pattern", pattern).Msg("Provisioning API route not found; OpenID tokens are checked by bridgev2 alone")
		return
	}
	check := &openIDChecker{
		homeserver: strings.TrimSuffix(cfg.Homeserver.Address, "/"),
		domain:     cfg.Homeserver.Domain,
		client:     &http.Client{Timeout: openIDCheckTimeout},
	}
	mc.AS.Router.Handle(provisioningPrefix+"v3/", check.wrap(inner, secret))
	gw.Bridge.Log.Info().Str("homeserver", check.homeserver).
		Msgf("Provisioning API: OpenID tokens of %s users are checked at the homeserver", check.domain)
}

type openIDChecker struct {
	homeserver string
	domain     string
	client     *http.Client
}

func (c *openIDChecker) wrap(next http.Handler, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, isOpenID := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer openid:")
		userID := id.UserID(r.URL.Query().Get("user_id"))
		if !isOpenID || userID.Homeserver() != c.domain {
			next.ServeHTTP(w, r)
			return
		}
		if err := c.check(r.Context(), userID, token); err != nil {
			zerolog.Ctx(r.Context()).Warn().Err(err).Str("user_id", string(userID)).
				Msg("Provisioning API request with an OpenID token the homeserver did not vouch for")
			mautrix.MUnknownToken.WithMessage("Invalid auth token").Write(w)
			return
		}
		// The homeserver vouched for user_id: bridgev2 takes it from here
		// as it would after its own OpenID check.
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+secret)
		next.ServeHTTP(w, r)
	})
}

var errOpenIDRefused = errors.New("the homeserver refused the OpenID token")

// check asks the homeserver whose the token is and compares with userID.
func (c *openIDChecker) check(ctx context.Context, userID id.UserID, token string) error {
	if token == "" {
		return errOpenIDRefused
	}
	u := c.homeserver + "/_matrix/federation/v1/openid/userinfo?access_token=" + url.QueryEscape(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// A *url.Error names the URL, token included: keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("OpenID check against the homeserver: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	if err != nil {
		return fmt.Errorf("OpenID check: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w (HTTP %d)", errOpenIDRefused, resp.StatusCode)
	}
	var info struct {
		Sub id.UserID `json:"sub"`
	}
	if err = json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("OpenID check: %w", err)
	}
	if info.Sub != userID {
		return fmt.Errorf("the OpenID token is %s's, not %s's", info.Sub, userID)
	}
	return nil
}
