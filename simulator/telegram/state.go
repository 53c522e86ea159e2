package tgsim

import (
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
)

// state is the simulated world. Everything in it is guarded by Server.mu.
type state struct {
	nextUserID int64
	users      map[int64]*user
	byPhone    map[string]*user
	byUsername map[string]*user

	conns    map[*conn]struct{}
	sessions map[int64]*session     // by MTProto session ID
	keys     map[[8]byte]*authState // by auth key ID

	codes     map[string]*loginCode // by phone_code_hash
	lastCode  map[string]string     // by phone
	codeTTL   time.Duration
	qrTokens  map[string]*qrToken // by token bytes
	qrTTL     time.Duration
	messageCh chan struct{}       // closed and replaced whenever a message is stored
	media     map[int64]*mediaObj // photos and documents by ID
	// duplicateSends counts sendMessage calls answered from sent (a resend).
	duplicateSends int
	// editWindow is how long after sending a message its sender may edit
	// it (Telegram: 48 hours); 0 means no limit.
	editWindow time.Duration
	// customEmoji maps custom emoji document IDs to their fallback emoji.
	customEmoji map[int64]string
	// channels are the supergroups and broadcast channels, by ID.
	channels       map[int64]*channel
	nextChannelID  int64
	channelTooLong int
	// differenceSlice is how many events one updates.getDifference answer
	// holds at most (0: differenceLimit); differenceTooLong, how far behind
	// (in pts) a client gets updates.differenceTooLong (0: never).
	differenceSlice   int
	differenceTooLong int
	// historyTTL is the self-destruct timer (seconds) of private chats, by
	// the pair of users (the smaller ID first); clockOffset moves the
	// simulator's clock ahead of the real one (AdvanceClock).
	historyTTL  map[[2]int64]int
	clockOffset time.Duration
	// paused are the accounts whose sessions get no pushed updates (a gap).
	paused map[int64]bool
	// chats are the basic groups, by ID.
	chats      map[int64]*basicChat
	nextChatID int64
	// chatPhotos are the photos of channels and basic groups, by chat ID.
	chatPhotos map[int64]*mediaObj
	// profilePhotos are the users' profile photos, by user ID.
	profilePhotos map[int64]*mediaObj
	// chatAdmins are the admins of basic groups (creators aside).
	chatAdmins map[int64]map[int64]bool
	// forums are the topics of forum supergroups, by channel ID.
	forums map[int64]*forum
}

func newState() state {
	return state{
		nextUserID:  1000000,
		users:       map[int64]*user{},
		byPhone:     map[string]*user{},
		byUsername:  map[string]*user{},
		conns:       map[*conn]struct{}{},
		sessions:    map[int64]*session{},
		keys:        map[[8]byte]*authState{},
		codes:       map[string]*loginCode{},
		lastCode:    map[string]string{},
		codeTTL:     defaultCodeTTL,
		qrTokens:    map[string]*qrToken{},
		qrTTL:       defaultQRTTL,
		messageCh:   make(chan struct{}),
		media:       map[int64]*mediaObj{},
		editWindow:  DefaultEditWindow,
		customEmoji: map[int64]string{},
		channels:    map[int64]*channel{},
		paused:      map[int64]bool{},
		historyTTL:  map[[2]int64]int{},
		// Channel IDs live in their own space; far from user IDs so that
		// a test mixing them up fails.
		nextChannelID: 1700000000,
	}
}

// user is an account and everything stored for it.
type user struct {
	acc       Account
	password  *srpSecret // nil: no 2FA
	botToken  string     // a bot's token; empty for people
	contacts  map[int64]bool
	pts       int
	box       []*boxEntry // private-chat history; box[i] has ID i+1
	autoReply func(in Message) (string, bool)
	sent      map[int64]*boxEntry // messages.sendMessage results by random_id
	// events are the pts-numbered updates other than new messages (edits,
	// deletions, read history), oldest first, at most maxPtsEvents.
	events []ptsEvent
	// readInbox is, per peer, the highest ID of this user's history up to
	// which this user read the peer's messages.
	readInbox map[int64]int
	// readOutbox is, per peer, the highest ID of this user's history up to
	// which the peer read this user's messages.
	readOutbox map[int64]int
	// typingSeen is the typing this user was shown, oldest first, at most
	// maxTypingSeen.
	typingSeen []Typing
	// online and lastSeen are the user's presence.
	online   bool
	lastSeen time.Time
}

// boxEntry is a message as stored in one user's history.
type boxEntry struct {
	id  int
	pts int // pts after this message was stored
	msg *stored
}

// stored is a private message, shared by the sender's and the recipient's
// histories.
type stored struct {
	from, to       int64
	fromID         int // ID in the sender's history
	toID           int // ID in the recipient's history
	text           string
	entities       []tg.MessageEntityClass
	media          *mediaObj // nil for text
	date           time.Time
	fromClient     bool
	replyTo        *stored   // the message this one answers, or nil
	quote          string    // the part of replyTo quoted, if any
	editDate       time.Time // zero until edited
	goneFrom       bool      // deleted from the sender's history
	goneTo         bool      // deleted from the recipient's history
	reactions      []reaction
	senderEntry    *boxEntry
	recipientEntry *boxEntry
	// chat is the basic group of a group message (0: a private message);
	// entries are then its entries in each member's history.
	chat    int64
	entries map[int64]*boxEntry
	// chatGone: the members whose history lost this group message.
	chatGone map[int64]bool
	// action makes the action of a group service message (nil: a
	// message); a fresh one per rendering.
	action func() tg.MessageActionClass
	// ttl is the message's self-destruct period in seconds (0: none).
	ttl int
}

// authState is what the server knows about one auth key.
type authState struct {
	userID int64 // logged-in user; 0 if none
	// revoked: the user ended this key's session from another device;
	// calls get SESSION_REVOKED until the key logs in again.
	revoked         bool
	passwordPending int64 // user whose 2FA password this key must give
	qrAccepted      int64 // user who accepted this key's QR token
	srp             map[int64]*srpChallenge
}

// session is an MTProto session (one gotd connection) seen on a TCP
// connection.
type session struct {
	mt        tgtest.Session
	keyID     [8]byte
	conn      *conn
	noUpdates bool
	out       *outbox
}

type loginCode struct {
	phone   string
	code    string
	expires time.Time
}

type qrToken struct {
	keyID    [8]byte
	expires  time.Time
	accepted bool
}

func (st *state) auth(keyID [8]byte) *authState {
	a, ok := st.keys[keyID]
	if !ok {
		a = &authState{srp: map[int64]*srpChallenge{}}
		st.keys[keyID] = a
	}
	return a
}
