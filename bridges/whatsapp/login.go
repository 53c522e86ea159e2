package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// Login flow IDs (globally unique in the gateway).
const (
	FlowIDQR    = "whatsapp-qr"
	FlowIDPhone = "whatsapp-phone"
)

// Login step IDs.
const (
	StepIDQR          = "net.passerelle.whatsapp.qr"
	StepIDPhone       = "net.passerelle.whatsapp.phone"
	StepIDPairingCode = "net.passerelle.whatsapp.pairing_code"
	StepIDComplete    = "net.passerelle.whatsapp.complete"
)

var (
	_ bridgev2.LoginProcessDisplayAndWait = (*loginProcess)(nil)
	_ bridgev2.LoginProcessUserInput      = (*loginProcess)(nil)
)

func respErr(code, msg string, httpStatus int) bridgev2.RespError {
	return bridgev2.RespError{ErrCode: code, Err: msg, StatusCode: httpStatus}
}

// Login errors a user sees.
var (
	ErrLoginQRTimeout   = respErr("NET.PASSERELLE.WHATSAPP.QR_TIMEOUT", "The QR code was not scanned in time; start the login again", http.StatusGone)
	ErrLoginCodeExpired = respErr("NET.PASSERELLE.WHATSAPP.CODE_EXPIRED", "The pairing code was not entered in time; start the login again", http.StatusGone)
	ErrLoginCancelled   = respErr("NET.PASSERELLE.WHATSAPP.CANCELLED", "The login was cancelled", http.StatusGone)
)

// maxCodeRetries is how many times a new pairing code is offered.
const maxCodeRetries = 3

// GetLoginFlows implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{
		Name:        "WhatsApp: QR code",
		Description: "Link WhatsApp by scanning a QR code with your phone (Linked devices → Link a device)",
		ID:          FlowIDQR,
	}, {
		Name:        "WhatsApp: pairing code",
		Description: "Link WhatsApp by typing an 8-character code on your phone",
		ID:          FlowIDPhone,
	}}
}

// CreateLogin implements bridgev2.NetworkConnector. It does no I/O.
func (c *WhatsAppConnector) CreateLogin(_ context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	if flowID != FlowIDQR && flowID != FlowIDPhone {
		return nil, bridgev2.ErrInvalidLoginFlowID
	}
	return &loginProcess{
		main: c,
		user: user,
		flow: flowID,
		log:  user.Log.With().Str("action", "whatsapp login").Str("flow", flowID).Logger(),
	}, nil
}

// loginProcess runs one login with a fresh, unpaired whatsmeow device. The
// device is saved to the store by whatsmeow when the phone accepts it.
type loginProcess struct {
	main *WhatsAppConnector
	user *bridgev2.User
	flow string
	log  zerolog.Logger

	mu     sync.Mutex
	wa     *whatsmeow.Client
	cancel context.CancelFunc
	qr     <-chan whatsmeow.QRChannelItem
	result chan pairResult
	// connected is closed when the paired client has logged in and
	// finished its post-login setup (prekey upload).
	connected chan struct{}
	// fw holds the paired client's events until the login's Client takes
	// the connection over.
	fw *forwarder
	// socketGone is set when whatsmeow closed the socket itself.
	socketGone bool
	deadline   time.Time
	retries    int
	done       bool
}

type pairResult struct {
	id  types.JID
	lid types.JID
	err error
}

func qrStep(code string) *bridgev2.LoginStep {
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeDisplayAndWait,
		StepID:       StepIDQR,
		Instructions: "Scan this QR code with WhatsApp on your phone: Settings → Linked devices → Link a device.",
		DisplayAndWaitParams: &bridgev2.LoginDisplayAndWaitParams{
			Type: bridgev2.LoginDisplayTypeQR,
			Data: code,
		},
	}
}

func phoneStep(note string) *bridgev2.LoginStep {
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeUserInput,
		StepID:       StepIDPhone,
		Instructions: strings.TrimSpace(note + " Enter the phone number of your WhatsApp account in international format, e.g. +33612345678."),
		UserInputParams: &bridgev2.LoginUserInputParams{Fields: []bridgev2.LoginInputDataField{{
			Type: bridgev2.LoginInputFieldTypePhoneNumber,
			ID:   "phone",
			Name: "phone number",
		}}},
	}
}

func codeStep(code string) *bridgev2.LoginStep {
	if len(code) == 8 {
		code = code[:4] + "-" + code[4:]
	}
	return &bridgev2.LoginStep{
		Type:   bridgev2.LoginStepTypeDisplayAndWait,
		StepID: StepIDPairingCode,
		Instructions: "On your phone, open WhatsApp → Settings → Linked devices → Link a device → " +
			"Link with phone number instead, and type this code.",
		DisplayAndWaitParams: &bridgev2.LoginDisplayAndWaitParams{
			Type: bridgev2.LoginDisplayTypeCode,
			Data: code,
		},
	}
}

// Start implements bridgev2.LoginProcess.
func (lp *loginProcess) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	if lp.flow == FlowIDPhone {
		return phoneStep(""), nil
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.deadline = lp.main.Clock.Now().Add(lp.main.QRTimeout)
	first, err := lp.connect(ctx)
	if err != nil {
		return nil, err
	}
	if first.Event != whatsmeow.QRChannelEventCode {
		lp.stop()
		return nil, fmt.Errorf("failed to get a QR code from WhatsApp (%s)", first.Event)
	}
	return qrStep(first.Code), nil
}

// connect starts a client on a new device and returns the first item of its
// QR channel (the first code, once the socket is ready for pairing).
func (lp *loginProcess) connect(ctx context.Context) (whatsmeow.QRChannelItem, error) {
	lp.stop()
	dev := lp.main.Store.NewDevice()
	wa := lp.main.newWAClient(dev, lp.log)
	result := make(chan pairResult, 2)
	connected := make(chan struct{})
	var connectedOnce sync.Once
	fw := &forwarder{}
	wa.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		var r pairResult
		switch e := evt.(type) {
		case *events.Connected:
			connectedOnce.Do(func() { close(connected) })
			return fw.dispatch(evt)
		case *events.PairSuccess:
			r = pairResult{id: e.ID, lid: e.LID}
		case *events.PairError:
			r = pairResult{err: e.Error}
		default:
			return fw.dispatch(evt)
		}
		select {
		case result <- r:
		default:
		}
		return true
	})
	runCtx, cancel := context.WithCancel(lp.log.WithContext(context.Background()))
	// The QR channel gets a context of its own that is never cancelled: when
	// its context ends, whatsmeow disconnects the client from the QR
	// goroutine, racing the socket's read loop. It stops by itself when the
	// socket closes.
	qr, err := wa.GetQRChannel(lp.log.WithContext(context.Background()))
	if err != nil {
		cancel()
		return whatsmeow.QRChannelItem{}, fmt.Errorf("failed to prepare pairing: %w", err)
	}
	if err = wa.ConnectContext(libraryContext(runCtx, lp.log)); err != nil {
		cancel()
		return whatsmeow.QRChannelItem{}, respErr("NET.PASSERELLE.WHATSAPP.CONNECT_FAILED", "Failed to connect to WhatsApp: "+err.Error(), http.StatusBadGateway)
	}
	lp.wa, lp.cancel, lp.qr, lp.result, lp.connected, lp.fw = wa, cancel, qr, result, connected, fw
	select {
	case item := <-qr:
		return item, nil
	case <-ctx.Done():
		lp.stop()
		return whatsmeow.QRChannelItem{}, ctx.Err()
	case <-time.After(time.Minute):
		lp.stop()
		return whatsmeow.QRChannelItem{}, respErr("NET.PASSERELLE.WHATSAPP.NO_QR", "WhatsApp did not offer pairing in time; try again", http.StatusGatewayTimeout)
	}
}

// SubmitUserInput implements bridgev2.LoginProcessUserInput: the phone
// number of the pairing-code flow.
func (lp *loginProcess) SubmitUserInput(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.flow != FlowIDPhone || lp.done {
		return nil, errors.New("login is not waiting for input")
	}
	phone, err := waid.ParsePhone(input["phone"])
	if err != nil {
		return phoneStep("That is not a valid phone number."), nil
	}
	if lp.wa == nil || !lp.wa.IsConnected() {
		first, err := lp.connect(ctx)
		if err != nil {
			return nil, err
		}
		if first.Event != whatsmeow.QRChannelEventCode {
			lp.stop()
			return nil, fmt.Errorf("WhatsApp did not offer pairing (%s)", first.Event)
		}
		go drainQR(lp.qr)
	}
	clientType, clientName := lp.main.Config.pairClient()
	code, err := lp.wa.PairPhone(ctx, phone.User, true, clientType, clientName)
	if err != nil {
		// The connection stays up for the next try.
		var iqErr *whatsmeow.IQError
		switch {
		case errors.As(err, &iqErr) && iqErr.Code == http.StatusNotFound:
			return phoneStep("WhatsApp has no account with this phone number."), nil
		case errors.Is(err, whatsmeow.ErrPhoneNumberTooShort), errors.Is(err, whatsmeow.ErrPhoneNumberIsNotInternational):
			return phoneStep("That is not a valid phone number."), nil
		}
		lp.stop()
		return nil, fmt.Errorf("failed to request a pairing code: %w", err)
	}
	lp.deadline = lp.main.Clock.Now().Add(lp.main.PairTimeout)
	return codeStep(code), nil
}

// drainQR consumes QR codes that the pairing-code flow does not show.
func drainQR(qr <-chan whatsmeow.QRChannelItem) {
	for range qr {
	}
}

// Wait implements bridgev2.LoginProcessDisplayAndWait: a new QR code when
// WhatsApp rotates it, the end of the login when the phone accepts.
func (lp *loginProcess) Wait(ctx context.Context) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	qr, result, deadline, done := lp.qr, lp.result, lp.deadline, lp.done
	if lp.flow == FlowIDPhone {
		qr = nil // drained elsewhere
	}
	lp.mu.Unlock()
	if done || result == nil {
		return nil, ErrLoginCancelled
	}
	timeout := lp.main.Clock.After(deadline.Sub(lp.main.Clock.Now()))
	for {
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), bridgev2.ErrLoginStepCancelled) {
				return nil, bridgev2.ErrLoginStepCancelled
			}
			return nil, ctx.Err()
		case <-timeout:
			return lp.expired(ctx)
		case item, ok := <-qr:
			if !ok {
				qr = nil
				continue
			}
			switch {
			case item.Event == whatsmeow.QRChannelEventCode:
				return qrStep(item.Code), nil
			case item == whatsmeow.QRChannelSuccess:
				qr = nil // the result channel has the device
			case item == whatsmeow.QRChannelTimeout:
				lp.mu.Lock()
				lp.socketGone = true
				lp.mu.Unlock()
				return lp.expired(ctx)
			case item.Event == whatsmeow.QRChannelEventError:
				lp.Cancel()
				return nil, fmt.Errorf("WhatsApp pairing failed: %w", item.Error)
			default:
				lp.Cancel()
				return nil, fmt.Errorf("WhatsApp pairing failed (%s)", item.Event)
			}
		case r := <-result:
			if r.err != nil {
				lp.Cancel()
				return nil, respErr("NET.PASSERELLE.WHATSAPP.PAIR_FAILED", "The phone could not link this device: "+r.err.Error(), http.StatusBadRequest)
			}
			return lp.finish(ctx, r)
		}
	}
}

// expired ends a QR login, or offers the pairing-code flow a new try.
func (lp *loginProcess) expired(_ context.Context) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.stop()
	if lp.flow == FlowIDQR {
		lp.done = true
		return nil, ErrLoginQRTimeout
	}
	lp.retries++
	if lp.retries > maxCodeRetries {
		lp.done = true
		return nil, ErrLoginCodeExpired
	}
	return phoneStep("The pairing code expired before it was entered on the phone."), nil
}

func (lp *loginProcess) stop() {
	closeClient(lp.wa, lp.cancel, !lp.socketGone)
	lp.wa, lp.cancel, lp.result, lp.socketGone = nil, nil, nil, false
}

// Cancel implements bridgev2.LoginProcess.
func (lp *loginProcess) Cancel() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.done = true
	lp.stop()
}

// finish saves the login once the phone accepted the device.
func (lp *loginProcess) finish(ctx context.Context, r pairResult) (*bridgev2.LoginStep, error) {
	lp.mu.Lock()
	wa, connected, fw := lp.wa, lp.connected, lp.fw
	lp.mu.Unlock()
	if wa == nil {
		return nil, ErrLoginCancelled
	}
	loginID, err := waid.MakeUserLoginID(r.id)
	if err != nil {
		lp.Cancel()
		return nil, err
	}
	// The client reconnects by itself after pairing; let it log in and
	// upload its prekeys, then hand its connection to the login.
	select {
	case <-connected:
	case <-ctx.Done():
		lp.Cancel()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		lp.log.Warn().Msg("Paired client did not log in; handing the device over anyway")
	}
	pushName := wa.Store.PushName
	lp.mu.Lock()
	cancel := lp.cancel
	lp.wa, lp.cancel, lp.result, lp.done = nil, nil, nil, true
	lp.mu.Unlock()
	if existing, _ := lp.main.Bridge.GetExistingUserLoginByID(ctx, loginID); existing != nil {
		old := meta.Get[waid.UserLoginMetadata](existing.Metadata).DeviceJID
		if old != "" && old != r.id.String() {
			if c, ok := existing.Client.(*Client); ok {
				c.Disconnect()
				c.deleteDevice(ctx)
			}
		}
	}
	name := pushName
	if name == "" {
		name = "+" + r.id.User
	}
	md := &waid.UserLoginMetadata{DeviceJID: r.id.String(), PushName: pushName}
	if !r.lid.IsEmpty() {
		md.LID = r.lid.ToNonAD().String()
	}
	ul, err := lp.user.NewLogin(ctx, &database.UserLogin{
		ID:            loginID,
		RemoteName:    name,
		RemoteProfile: status.RemoteProfile{Name: pushName, Phone: "+" + r.id.User},
		Metadata:      md,
	}, &bridgev2.NewLoginParams{DeleteOnConflict: false})
	if err != nil {
		closeClient(wa, cancel, true)
		return nil, fmt.Errorf("failed to save the new login: %w", err)
	}
	lp.log.Info().Str("login_id", "whatsapp.…"+lastDigits(r.id.User)).Msg("Linked a WhatsApp device")
	if cl, ok := ul.Client.(*Client); ok {
		cl.adopt(wa, cancel)
		fw.setTarget(cl.handleEvent)
	} else {
		closeClient(wa, cancel, true)
		go ul.Client.Connect(ul.Log.WithContext(context.Background()))
	}
	return &bridgev2.LoginStep{
		Type:           bridgev2.LoginStepTypeComplete,
		StepID:         StepIDComplete,
		Instructions:   "Linked to WhatsApp as " + name,
		CompleteParams: &bridgev2.LoginCompleteParams{UserLoginID: ul.ID, UserLogin: ul},
	}, nil
}

func lastDigits(s string) string {
	if len(s) <= 2 {
		return s
	}
	return s[len(s)-2:]
}

// forwarder passes a client's events to a target set later, holding them
// (in order) until then.
type forwarder struct {
	mu      sync.Mutex
	target  func(any) bool
	pending []any
}

// maxPending bounds the events held before the target is set.
const maxPending = 1000

func (f *forwarder) dispatch(evt any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.target != nil {
		return f.target(evt)
	}
	if len(f.pending) < maxPending {
		f.pending = append(f.pending, takeAck(evt))
	} else if deferAck := deferAckOf(evt); deferAck != nil {
		deferAck()(false) // not acknowledged: the server sends it again
	}
	return true
}

// deferAckOf is the DeferAck of an event that has one.
func deferAckOf(evt any) func() func(ok bool) {
	switch e := evt.(type) {
	case *events.Message:
		return e.DeferAck
	case *events.GroupInfo:
		return e.DeferAck
	case *events.JoinedGroup:
		return e.DeferAck
	}
	return nil
}

// takeAck takes over, on whatsmeow's goroutine, the acknowledgement of an
// event that lets it be deferred, and returns a copy of the event whose
// DeferAck hands that acknowledgement to its handler later: whatsmeow must
// know before its handler returns that the event is not done yet (it
// would acknowledge it at once, and its flag would be written from the
// handler's goroutine while it reads it).
func takeAck(evt any) any {
	deferAck := deferAckOf(evt)
	if deferAck == nil {
		return evt
	}
	done := deferAck()
	pass := func() func(ok bool) { return done }
	switch e := evt.(type) {
	case *events.Message:
		c := *e
		c.DeferAck = pass
		return &c
	case *events.GroupInfo:
		c := *e
		c.DeferAck = pass
		return &c
	case *events.JoinedGroup:
		c := *e
		c.DeferAck = pass
		return &c
	}
	return evt
}

func (f *forwarder) setTarget(target func(any) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, evt := range f.pending {
		target(evt)
	}
	f.pending, f.target = nil, target
}
