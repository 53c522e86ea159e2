package tgsim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"go.uber.org/zap"
)

// RPC errors of the login flow.
var (
	errPhoneInvalid       = tgerr.New(400, "PHONE_NUMBER_INVALID")
	errCodeInvalid        = tgerr.New(400, "PHONE_CODE_INVALID")
	errCodeExpired        = tgerr.New(400, "PHONE_CODE_EXPIRED")
	errCodeEmpty          = tgerr.New(400, "PHONE_CODE_EMPTY")
	errPasswordNeeded     = tgerr.New(401, "SESSION_PASSWORD_NEEDED")
	errPasswordInvalid    = tgerr.New(400, "PASSWORD_HASH_INVALID")
	errSRPIDInvalid       = tgerr.New(400, "SRP_ID_INVALID")
	errTokenInvalid       = tgerr.New(400, "AUTH_TOKEN_INVALID")
	errTokenExpired       = tgerr.New(400, "AUTH_TOKEN_EXPIRED")
	errTokenAlreadyAccept = tgerr.New(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
)

func (s *Server) newCode() string {
	if s.fixedCode != "" {
		return s.fixedCode
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%05d", n.Int64())
}

func (s *Server) authSendCode(ctx context.Context, req *tg.AuthSendCodeRequest) (tg.AuthSentCodeClass, error) {
	phone := NormalizePhone(req.PhoneNumber)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.byPhone[phone]; !ok {
		return nil, errPhoneInvalid
	}
	code := s.newCode()
	hash := hex.EncodeToString(randBytes(9))
	s.st.codes[hash] = &loginCode{phone: phone, code: code, expires: time.Now().Add(s.st.codeTTL)}
	s.st.lastCode[phone] = code
	s.log.Debug("Login code issued", zap.String("phone", phone), zap.String("code", code))
	return &tg.AuthSentCode{
		Type:          &tg.AuthSentCodeTypeApp{Length: len(code)},
		PhoneCodeHash: hash,
	}, nil
}

func (s *Server) authSignIn(ctx context.Context, req *tg.AuthSignInRequest) (tg.AuthAuthorizationClass, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.st.codes[req.PhoneCodeHash]
	switch {
	case !ok:
		return nil, errCodeExpired
	case lc.phone != NormalizePhone(req.PhoneNumber):
		return nil, errPhoneInvalid
	case req.PhoneCode == "":
		return nil, errCodeEmpty
	case time.Now().After(lc.expires):
		delete(s.st.codes, req.PhoneCodeHash)
		return nil, errCodeExpired
	case req.PhoneCode != lc.code:
		return nil, errCodeInvalid
	}
	delete(s.st.codes, req.PhoneCodeHash)
	u, ok := s.st.byPhone[lc.phone]
	if !ok {
		return nil, errPhoneInvalid
	}
	return s.loginLocked(r.keyID, u)
}

// loginLocked logs keyID in as u, or asks for the 2FA password first.
func (s *Server) loginLocked(keyID [8]byte, u *user) (*tg.AuthAuthorization, error) {
	a := s.st.auth(keyID)
	if u.password != nil {
		a.passwordPending = u.acc.ID
		return nil, errPasswordNeeded
	}
	return s.bindLocked(keyID, u), nil
}

func (s *Server) bindLocked(keyID [8]byte, u *user) *tg.AuthAuthorization {
	a := s.st.auth(keyID)
	a.userID = u.acc.ID
	a.revoked = false
	a.passwordPending = 0
	a.qrAccepted = 0
	clear(a.srp)
	s.log.Info("Client logged in", zap.Int64("user_id", u.acc.ID))
	return &tg.AuthAuthorization{User: s.tgUserLocked(u, u.acc.ID)}
}

func (s *Server) accountGetPassword(ctx context.Context) (*tg.AccountPassword, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.auth(r.keyID)
	id := a.userID
	if id == 0 {
		id = a.passwordPending
	}
	u, ok := s.st.users[id]
	if !ok {
		return nil, errUnauthorized
	}
	if u.password == nil {
		return accountPassword(nil, nil, 0), nil
	}
	ch := u.password.challenge(id)
	srpID := randInt64()
	a.srp[srpID] = ch
	return accountPassword(u.password, ch, srpID), nil
}

func (s *Server) authCheckPassword(ctx context.Context, pw tg.InputCheckPasswordSRPClass) (tg.AuthAuthorizationClass, error) {
	r := requestFrom(ctx)
	in, ok := pw.(*tg.InputCheckPasswordSRP)
	if !ok {
		return nil, errPasswordInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.auth(r.keyID)
	ch, ok := a.srp[in.SRPID]
	if !ok {
		return nil, errSRPIDInvalid
	}
	delete(a.srp, in.SRPID) // one attempt per challenge, as on Telegram
	u, ok := s.st.users[ch.userID]
	if !ok || u.password == nil || (a.passwordPending != u.acc.ID && a.userID != u.acc.ID) {
		return nil, errSRPIDInvalid
	}
	if !u.password.check(ch, in.A, in.M1) {
		return nil, errPasswordInvalid
	}
	return s.bindLocked(r.keyID, u), nil
}

func (s *Server) authLogOut(ctx context.Context) (*tg.AuthLoggedOut, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.st.keys[r.keyID]
	if !ok || a.userID == 0 {
		return nil, errUnauthorized
	}
	s.log.Info("Client logged out", zap.Int64("user_id", a.userID))
	delete(s.st.keys, r.keyID)
	return &tg.AuthLoggedOut{}, nil
}

func (s *Server) authExportLoginToken(ctx context.Context, _ *tg.AuthExportLoginTokenRequest) (tg.AuthLoginTokenClass, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.auth(r.keyID)
	if a.qrAccepted != 0 {
		u, ok := s.st.users[a.qrAccepted]
		a.qrAccepted = 0
		if ok {
			auth, err := s.loginLocked(r.keyID, u)
			if err != nil {
				return nil, err
			}
			return &tg.AuthLoginTokenSuccess{Authorization: auth}, nil
		}
	}
	now := time.Now()
	for k, t := range s.st.qrTokens {
		if now.After(t.expires) {
			delete(s.st.qrTokens, k)
		}
	}
	token := randBytes(32)
	expires := now.Add(s.st.qrTTL)
	s.st.qrTokens[string(token)] = &qrToken{keyID: r.keyID, expires: expires}
	unix := expires.Unix()
	if expires.Nanosecond() > 0 {
		unix++
	}
	return &tg.AuthLoginToken{Expires: int(unix), Token: token}, nil
}

// acceptLocked marks a QR token as accepted by u and tells the sessions of
// the auth key that exported it.
func (s *Server) acceptLocked(u *user, token []byte) error {
	t, ok := s.st.qrTokens[string(token)]
	switch {
	case !ok:
		return errTokenInvalid
	case t.accepted:
		return errTokenAlreadyAccept
	case time.Now().After(t.expires):
		delete(s.st.qrTokens, string(token))
		return errTokenExpired
	}
	t.accepted = true
	s.st.auth(t.keyID).qrAccepted = u.acc.ID
	s.pushToKeyLocked(t.keyID, &tg.UpdateShort{
		Update: &tg.UpdateLoginToken{},
		Date:   int(time.Now().Unix()),
	})
	return nil
}

// AcceptQR makes the phone of account scan a QR login token, as
// auth.acceptLoginToken does: the client that exported the token gets
// updateLoginToken, and its next auth.exportLoginToken logs it in (or
// answers SESSION_PASSWORD_NEEDED if the account has 2FA). Errors are
// *tgerr.Error values: AUTH_TOKEN_INVALID, AUTH_TOKEN_EXPIRED,
// AUTH_TOKEN_ALREADY_ACCEPTED; or ErrNoAccount.
func (s *Server) AcceptQR(ctx context.Context, account int64, token []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[account]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, account)
	}
	return s.acceptLocked(u, token)
}

// ParseQRToken accepts a "tg://login?token=..." URL (what qrlogin.Token.URL
// returns and the QR code encodes) or a bare base64url token, and returns the
// token bytes for AcceptQR.
func ParseQRToken(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "tg:") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("failed to parse QR login URL: %w", err)
		}
		if u.Host != "login" {
			return nil, fmt.Errorf("not a QR login URL: %q", s)
		}
		s = u.Query().Get("token")
	}
	if s == "" {
		return nil, errors.New("empty QR login token")
	}
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("QR login token is not base64: %q", s)
}

func (s *Server) authAcceptLoginToken(ctx context.Context, token []byte) (*tg.Authorization, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.selfLocked(r)
	if err != nil {
		return nil, err
	}
	if err := s.acceptLocked(u, token); err != nil {
		return nil, err
	}
	now := int(time.Now().Unix())
	return &tg.Authorization{
		Hash:          randInt64(),
		DeviceModel:   "tgsim",
		Platform:      "simulator",
		SystemVersion: "1",
		AppName:       "tgsim",
		AppVersion:    "1",
		DateCreated:   now,
		DateActive:    now,
		IP:            "127.0.0.1",
		Country:       "Nowhere",
	}, nil
}
