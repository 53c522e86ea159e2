package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Login flow IDs (globally unique in the gateway).
const (
	FlowIDPhone = "telegram-phone"
	FlowIDQR    = "telegram-qr"
	// FlowIDBot logs in the organisation's bot with its token (from
	// @BotFather), e.g. to be the relay of the groups it is in.
	FlowIDBot = "telegram-bot"
)

// Login step IDs.
const (
	StepIDPhone    = "net.passerelle.telegram.phone"
	StepIDCode     = "net.passerelle.telegram.code"
	StepIDPassword = "net.passerelle.telegram.password"
	StepIDQR       = "net.passerelle.telegram.qr"
	StepIDComplete = "net.passerelle.telegram.complete"
	StepIDBotToken = "net.passerelle.telegram.bot_token"
)

const (
	// maxAttempts is how many wrong codes or passwords end the login.
	maxAttempts = 5
	// maxQRRefreshes is how many times an unscanned QR code is renewed.
	maxQRRefreshes = 3
	// loginTimeout bounds the whole login, so an abandoned one stops.
	loginTimeout = 30 * time.Minute
)

var (
	_ bridgev2.LoginProcessUserInput      = (*loginProcess)(nil)
	_ bridgev2.LoginProcessDisplayAndWait = (*loginProcess)(nil)
)

// GetLoginFlows implements bridgev2.NetworkConnector.
func (c *TelegramConnector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{
		Name:        "Telegram: phone number",
		Description: "Log in to Telegram with your phone number and the code Telegram sends you",
		ID:          FlowIDPhone,
	}, {
		Name:        "Telegram: QR code",
		Description: "Log in to Telegram by scanning a QR code with a logged-in Telegram app",
		ID:          FlowIDQR,
	}, {
		Name:        "Telegram: bot token",
		Description: "Log in a Telegram bot with the token @BotFather gave",
		ID:          FlowIDBot,
	}}
}

// CreateLogin implements bridgev2.NetworkConnector. It does no I/O.
func (c *TelegramConnector) CreateLogin(_ context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	switch flowID {
	case FlowIDPhone, FlowIDQR, FlowIDBot:
	default:
		return nil, bridgev2.ErrInvalidLoginFlowID
	}
	return &loginProcess{
		main: c,
		user: user,
		flow: flowID,
		log:  user.Log.With().Str("action", "telegram login").Str("flow", flowID).Logger(),
		sess: &session.StorageMemory{},
	}, nil
}

type loginStage int

const (
	stagePhone loginStage = iota
	stageCode
	stagePassword
	stageQR
	stageBotToken
	stageDone
)

// loginProcess runs one login: a gotd client on an in-memory session that is
// copied to the database once Telegram accepts the login.
type loginProcess struct {
	main *TelegramConnector
	user *bridgev2.User
	flow string
	log  zerolog.Logger
	sess *session.StorageMemory

	mu       sync.Mutex
	stage    loginStage
	client   *telegram.Client
	cancel   context.CancelFunc
	done     chan struct{}
	tokenCh  chan struct{}
	phone    string
	codeHash string
	attempts int
	qr       qrlogin.QR
	token    qrlogin.Token
	qrRenews int
}

func respErr(code, msg string, httpStatus int) bridgev2.RespError {
	return bridgev2.RespError{ErrCode: code, Err: msg, StatusCode: httpStatus}
}

var (
	errLoginTooManyAttempts = respErr("NET.PASSERELLE.TELEGRAM.TOO_MANY_ATTEMPTS", "Too many wrong attempts; start the login again", http.StatusForbidden)
	errLoginQRExpired       = respErr("NET.PASSERELLE.TELEGRAM.QR_EXPIRED", fmt.Sprintf("The QR code expired %d times without being scanned; start the login again", maxQRRefreshes+1), http.StatusGone)
	errLoginNoAccount       = respErr("NET.PASSERELLE.TELEGRAM.NO_ACCOUNT", "This phone number has no Telegram account; sign up in an official Telegram app first", http.StatusNotFound)
)

// inputStep asks the user for one value; note (a reason to ask again, or "")
// comes before the instructions.
func inputStep(stepID, note, instructions string, fieldType bridgev2.LoginInputFieldType, fieldID, name string) *bridgev2.LoginStep {
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeUserInput,
		StepID:       stepID,
		Instructions: strings.TrimSpace(note + " " + instructions),
		UserInputParams: &bridgev2.LoginUserInputParams{Fields: []bridgev2.LoginInputDataField{{
			Type: fieldType,
			ID:   fieldID,
			Name: name,
		}}},
	}
}

func phoneStep(note string) *bridgev2.LoginStep {
	return inputStep(StepIDPhone, note, "Enter your phone number in international format, e.g. +33612345678.",
		bridgev2.LoginInputFieldTypePhoneNumber, "phone", "phone number")
}

func codeStep(note string) *bridgev2.LoginStep {
	return inputStep(StepIDCode, note, "Enter the login code Telegram sent to your Telegram app (or by SMS).",
		bridgev2.LoginInputFieldType2FACode, "code", "login code")
}

func passwordStep(note string) *bridgev2.LoginStep {
	return inputStep(StepIDPassword, note, "Your account has two-step verification: enter your Telegram password.",
		bridgev2.LoginInputFieldTypePassword, "password", "two-step verification password")
}

func qrStep(token qrlogin.Token) *bridgev2.LoginStep {
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeDisplayAndWait,
		StepID:       StepIDQR,
		Instructions: "Scan this QR code with a logged-in Telegram app: Settings → Devices → Link Desktop Device.",
		DisplayAndWaitParams: &bridgev2.LoginDisplayAndWaitParams{
			Type: bridgev2.LoginDisplayTypeQR,
			Data: token.URL(),
		},
	}
}

// Start implements bridgev2.LoginProcess.
func (lp *loginProcess) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.flow == FlowIDPhone {
		lp.stage = stagePhone
		return phoneStep(""), nil
	}
	if lp.flow == FlowIDBot {
		lp.stage = stageBotToken
		return botTokenStep(""), nil
	}
	if err := lp.connect(ctx); err != nil {
		return nil, err
	}
	apiID, apiHash := lp.main.Config.apiCredentials()
	lp.qr = qrlogin.NewQR(lp.client.API(), apiID, apiHash, qrlogin.Options{})
	lp.stage = stageQR
	return lp.exportQR(ctx)
}

// exportQR asks for a (new) login token and shows it.
func (lp *loginProcess) exportQR(ctx context.Context) (*bridgev2.LoginStep, error) {
	token, err := lp.qr.Export(ctx)
	if tgerr.Is(err, "SESSION_PASSWORD_NEEDED") {
		lp.stage = stagePassword
		return passwordStep(""), nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get a QR login token: %w", err)
	}
	if token.Empty() {
		// Accepted in the meantime.
		return lp.importQR(ctx)
	}
	lp.token = token
	return qrStep(token), nil
}

func (lp *loginProcess) importQR(ctx context.Context) (*bridgev2.LoginStep, error) {
	authz, err := lp.qr.Import(ctx)
	if tgerr.Is(err, "SESSION_PASSWORD_NEEDED") {
		lp.stage = stagePassword
		return passwordStep("The QR code was accepted."), nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to finish QR login: %w", err)
	}
	return lp.finish(ctx, authz)
}

// Wait implements bridgev2.LoginProcessDisplayAndWait: it returns when the QR
// code is scanned, or a new QR step when the code expired.
func (lp *loginProcess) Wait(ctx context.Context) (*bridgev2.LoginStep, error) {
	// The lock is not held while waiting, so that Cancel is never stuck.
	lp.mu.Lock()
	if lp.stage != stageQR {
		lp.mu.Unlock()
		return nil, fmt.Errorf("login is not waiting for a QR code")
	}
	tokenCh, done, expires := lp.tokenCh, lp.done, lp.token.Expires()
	lp.mu.Unlock()
	wait := time.Until(expires)
	if wait < time.Second {
		wait = time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var scanned bool
	select {
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), bridgev2.ErrLoginStepCancelled) {
			return nil, bridgev2.ErrLoginStepCancelled
		}
		return nil, ctx.Err()
	case <-done:
		return nil, fmt.Errorf("login was cancelled")
	case <-tokenCh:
		scanned = true
	case <-timer.C:
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.stage != stageQR {
		return nil, fmt.Errorf("login was cancelled")
	}
	if scanned {
		return lp.importQR(ctx)
	}
	lp.qrRenews++
	if lp.qrRenews > maxQRRefreshes {
		return nil, errLoginQRExpired
	}
	lp.log.Debug().Int("renewal", lp.qrRenews).Msg("QR login token expired, renewing")
	return lp.exportQR(ctx)
}

// SubmitUserInput implements bridgev2.LoginProcessUserInput. Wrong input
// (bad phone number, wrong or expired code, wrong password) returns the same
// step again with an explanation, because bridgev2 ends the whole login on
// an error (commands/login.go submitNext, matrix/provisioninglogin.go
// executeStep), and the user must be able to try again.
func (lp *loginProcess) SubmitUserInput(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	switch lp.stage {
	case stagePhone:
		return lp.submitPhone(ctx, input["phone"])
	case stageCode:
		return lp.submitCode(ctx, input["code"])
	case stagePassword:
		return lp.submitPassword(ctx, input["password"])
	case stageBotToken:
		return lp.submitBotToken(ctx, input["token"])
	default:
		return nil, fmt.Errorf("login is not waiting for input")
	}
}

func botTokenStep(note string) *bridgev2.LoginStep {
	return inputStep(StepIDBotToken, note, "Enter the bot's token, as @BotFather gave it (123456:ABC...).",
		bridgev2.LoginInputFieldTypePassword, "token", "Bot token")
}

// submitBotToken logs the bot in (auth.importBotAuthorization). The token
// is a secret: it is never logged.
func (lp *loginProcess) submitBotToken(ctx context.Context, raw string) (*bridgev2.LoginStep, error) {
	token := strings.TrimSpace(raw)
	if id, _, ok := strings.Cut(token, ":"); !ok || id == "" {
		return botTokenStep("That is not a bot token."), nil
	}
	if lp.client == nil {
		if err := lp.connect(ctx); err != nil {
			return nil, err
		}
	}
	authz, err := lp.client.Auth().Bot(ctx, token)
	switch {
	case tgerr.Is(err, "ACCESS_TOKEN_INVALID", "ACCESS_TOKEN_EXPIRED"):
		if lp.wrongAttempt() {
			return nil, errLoginTooManyAttempts
		}
		return botTokenStep("Telegram does not accept this token."), nil
	case err != nil:
		return nil, fmt.Errorf("failed to log the bot in: %w", err)
	}
	return lp.finish(ctx, authz)
}

func (lp *loginProcess) submitPhone(ctx context.Context, raw string) (*bridgev2.LoginStep, error) {
	phone, err := bridgev2.CleanPhoneNumber(strings.TrimSpace(raw))
	if err != nil {
		return phoneStep("That is not a valid phone number (" + err.Error() + ")."), nil
	}
	if lp.client == nil {
		if err = lp.connect(ctx); err != nil {
			return nil, err
		}
	}
	return lp.sendCode(ctx, phone, "")
}

func (lp *loginProcess) sendCode(ctx context.Context, phone, note string) (*bridgev2.LoginStep, error) {
	sent, err := lp.client.Auth().SendCode(ctx, phone, auth.SendCodeOptions{})
	switch {
	case tgerr.Is(err, "PHONE_NUMBER_INVALID"):
		lp.stage = stagePhone
		return phoneStep("Telegram does not know this phone number."), nil
	case tgerr.Is(err, "PHONE_NUMBER_BANNED"):
		return nil, respErr("NET.PASSERELLE.TELEGRAM.BANNED", "Telegram has banned this phone number", http.StatusForbidden)
	case err != nil:
		if wait, ok := tgerr.AsFloodWait(err); ok {
			return nil, respErr("NET.PASSERELLE.TELEGRAM.FLOOD_WAIT", fmt.Sprintf("Telegram asks to wait %s before trying again", wait), http.StatusTooManyRequests)
		}
		return nil, fmt.Errorf("failed to request a login code: %w", err)
	}
	switch s := sent.(type) {
	case *tg.AuthSentCode:
		lp.phone, lp.codeHash, lp.stage = phone, s.PhoneCodeHash, stageCode
		return codeStep(note), nil
	case *tg.AuthSentCodeSuccess:
		authz, ok := s.Authorization.(*tg.AuthAuthorization)
		if !ok {
			return nil, errLoginNoAccount
		}
		return lp.finish(ctx, authz)
	default:
		return nil, fmt.Errorf("unexpected answer to auth.sendCode: %T", sent)
	}
}

func (lp *loginProcess) wrongAttempt() bool {
	lp.attempts++
	return lp.attempts >= maxAttempts
}

func (lp *loginProcess) submitCode(ctx context.Context, raw string) (*bridgev2.LoginStep, error) {
	code := strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(raw))
	if code == "" {
		return codeStep("The code is empty."), nil
	}
	authz, err := lp.client.Auth().SignIn(ctx, lp.phone, code, lp.codeHash)
	var signUp *auth.SignUpRequired
	switch {
	case errors.Is(err, auth.ErrPasswordAuthNeeded):
		lp.stage, lp.attempts = stagePassword, 0
		return passwordStep(""), nil
	case tgerr.Is(err, "PHONE_CODE_INVALID", "PHONE_CODE_EMPTY"):
		if lp.wrongAttempt() {
			return nil, errLoginTooManyAttempts
		}
		return codeStep("Wrong code, try again."), nil
	case tgerr.Is(err, "PHONE_CODE_EXPIRED"):
		if lp.wrongAttempt() {
			return nil, errLoginTooManyAttempts
		}
		return lp.sendCode(ctx, lp.phone, "That code has expired; Telegram sent a new one.")
	case errors.As(err, &signUp):
		return nil, errLoginNoAccount
	case err != nil:
		return nil, fmt.Errorf("failed to sign in: %w", err)
	}
	return lp.finish(ctx, authz)
}

func (lp *loginProcess) submitPassword(ctx context.Context, password string) (*bridgev2.LoginStep, error) {
	if password == "" {
		return passwordStep("The password is empty."), nil
	}
	authz, err := lp.client.Auth().Password(ctx, password)
	switch {
	case errors.Is(err, auth.ErrPasswordInvalid):
		if lp.wrongAttempt() {
			return nil, errLoginTooManyAttempts
		}
		return passwordStep("Wrong password, try again."), nil
	case err != nil:
		return nil, fmt.Errorf("failed to check password: %w", err)
	}
	return lp.finish(ctx, authz)
}

// connect starts the login's gotd client and waits until it is ready.
func (lp *loginProcess) connect(ctx context.Context) error {
	runCtx, cancel := context.WithTimeout(lp.log.WithContext(context.Background()), loginTimeout)
	tokenCh := make(chan struct{}, 1)
	dispatcher := tg.NewUpdateDispatcher()
	dispatcher.OnLoginToken(func(context.Context, tg.Entities, *tg.UpdateLoginToken) error {
		select {
		case tokenCh <- struct{}{}:
		default:
		}
		return nil
	})
	opts := lp.main.Config.clientOptions()
	opts.SessionStorage = lp.sess
	opts.UpdateHandler = dispatcher
	opts.Logger = gotdLogger(lp.log.With().Str("component", "gotd").Logger())
	apiID, apiHash := lp.main.Config.apiCredentials()
	client := telegram.NewClient(apiID, apiHash, opts)

	ready := make(chan struct{})
	errCh := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errCh <- client.Run(runCtx, func(ctx context.Context) error {
			close(ready)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-errCh:
		cancel()
		return respErr("NET.PASSERELLE.TELEGRAM.CONNECT_FAILED", fmt.Sprintf("Failed to connect to Telegram: %v", err), http.StatusBadGateway)
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
	lp.client, lp.cancel, lp.done, lp.tokenCh = client, cancel, done, tokenCh
	return nil
}

// waitSession waits until gotd has written the session: it does so right
// after the connection becomes ready, concurrently with the first requests.
func (lp *loginProcess) waitSession(ctx context.Context) ([]byte, error) {
	for i := 0; ; i++ {
		data, err := lp.sess.LoadSession(ctx)
		if err == nil || !errors.Is(err, session.ErrNotFound) || i >= 100 {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (lp *loginProcess) stop() {
	if lp.cancel != nil {
		lp.cancel()
		<-lp.done
		lp.cancel = nil
	}
}

// Cancel implements bridgev2.LoginProcess.
func (lp *loginProcess) Cancel() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.stage = stageDone
	lp.stop()
}

// finish stores the session and creates (or updates) the user login.
func (lp *loginProcess) finish(ctx context.Context, authz *tg.AuthAuthorization) (*bridgev2.LoginStep, error) {
	user, ok := authz.User.(*tg.User)
	if !ok {
		return nil, fmt.Errorf("unexpected user type %T after login", authz.User)
	}
	data, err := lp.waitSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the new Telegram session: %w", err)
	}
	// The update state at login: what arrives later is bridged, even if it
	// arrives before the login's own client has started.
	remoteState, err := lp.client.API().UpdatesGetState(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to get the update state: %w", err)
	}
	lp.stop()
	lp.stage = stageDone
	name := strings.TrimSpace(user.FirstName + " " + user.LastName)
	if name == "" && user.Phone != "" {
		name = "+" + user.Phone
	}
	if name == "" {
		name = user.Username
	}
	profile := status.RemoteProfile{Name: name, Username: user.Username}
	if user.Phone != "" {
		profile.Phone = "+" + user.Phone
	}
	ul, err := lp.user.NewLogin(ctx, &database.UserLogin{
		ID:            tgid.MakeUserLoginID(user.ID),
		RemoteName:    name,
		RemoteProfile: profile,
		Metadata:      &tgid.UserLoginMetadata{Phone: profile.Phone, Username: user.Username, ChatsAtLogin: true},
	}, &bridgev2.NewLoginParams{DeleteOnConflict: true})
	if err != nil {
		return nil, fmt.Errorf("failed to save the new login: %w", err)
	}
	// Saved after NewLogin, which stops a previous client of this login, so
	// that the old client cannot overwrite the new session.
	if err = lp.main.Store.SaveSession(ctx, user.ID, data); err != nil {
		return nil, err
	}
	stateStore := lp.main.Store.UpdateState()
	if _, found, err := stateStore.GetState(ctx, user.ID); err != nil {
		return nil, err
	} else if !found {
		err = stateStore.SetState(ctx, user.ID, updates.State{
			Pts: remoteState.Pts, Qts: remoteState.Qts, Date: remoteState.Date, Seq: remoteState.Seq,
		})
		if err != nil {
			return nil, err
		}
	}
	lp.log.Info().Str("login_id", string(ul.ID)).Msg("Logged in to Telegram")
	go ul.Client.Connect(ul.Log.WithContext(context.Background()))
	return &bridgev2.LoginStep{
		Type:           bridgev2.LoginStepTypeComplete,
		StepID:         StepIDComplete,
		Instructions:   fmt.Sprintf("Logged in to Telegram as %s", name),
		CompleteParams: &bridgev2.LoginCompleteParams{UserLoginID: ul.ID, UserLogin: ul},
	}, nil
}
