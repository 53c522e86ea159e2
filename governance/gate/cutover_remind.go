package gate

import (
	"context"
	"runtime/debug"
	"sync"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/migration"
)

// maxQueuedReminders bounds the reminders waiting to be sent; one more is
// dropped (and logged): the contact is reminded on a later message.
const maxQueuedReminders = 256

// reminderJob is one reminder to send through a login in a portal.
type reminderJob struct {
	login   networkid.UserLoginID
	key     networkid.PortalKey
	newRoom id.RoomID
	staff   id.UserID
	ident   migration.Identity
	// msgID is the late message, which the reminder's notice answers.
	msgID networkid.MessageID
}

// reminderQueues holds each running gate's queue of reminders, sent in
// order by one worker that stops with the gate.
var reminderQueues sync.Map // *Gate → chan reminderJob

// remindAfterCutOver runs after a remote message was delivered: in a portal
// that was cut over, the sender is reminded where the chat moved (at most
// once per migration.cutover.reminder_interval). The reminder is sent in
// the background: the connector is never called back on the path that
// acknowledges its event.
func (g *Gate) remindAfterCutOver(ctx context.Context, login *bridgev2.UserLogin, evt bridgev2.RemoteEvent, key networkid.PortalKey, ident remote.Identity) {
	if g.Migration == nil || !isMessage(evt.GetType()) || evt.GetSender().IsFromMe || ident.ID == "" {
		return
	}
	log := zerolog.Ctx(ctx)
	c, err := g.Migration.CutOverOf(ctx, key)
	if err != nil {
		log.Err(err).Msg("Failed to look up cut-over")
		return
	} else if c == nil {
		return
	}
	who := migration.Identity{Network: networkOf(string(key.ID)), Contact: g.Contacts.Key(ident.ID)}
	due, err := g.Migration.ReminderDue(ctx, who, g.cfg.Migration.CutOver.reminderInterval())
	if err != nil {
		log.Err(err).Msg("Failed to check cut-over reminder")
		return
	} else if !due {
		return
	}
	job := reminderJob{login: login.ID, key: key, newRoom: c.NewRoom, staff: login.UserMXID, ident: who}
	if m, ok := evt.(bridgev2.RemoteMessage); ok {
		job.msgID = m.GetID()
	}
	select {
	case g.reminderQueue() <- job:
	default:
		log.Warn().Msg("Too many cut-over reminders waiting: this one is dropped")
	}
}

func (g *Gate) reminderQueue() chan reminderJob {
	if q, ok := reminderQueues.Load(g); ok {
		return q.(chan reminderJob)
	}
	q := make(chan reminderJob, maxQueuedReminders)
	actual, loaded := reminderQueues.LoadOrStore(g, q)
	if !loaded {
		go g.runReminders(g.bg, q)
	}
	return actual.(chan reminderJob)
}

func (g *Gate) runReminders(ctx context.Context, q chan reminderJob) {
	defer reminderQueues.Delete(g)
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-q:
			g.sendReminder(ctx, job)
		}
	}
}

// sendReminder sends one reminder; a panic is logged, never fatal.
func (g *Gate) sendReminder(ctx context.Context, job reminderJob) {
	log := zerolog.Ctx(ctx).With().Str("portal_id", g.ShownPortal(job.key.ID)).Str("action", "cut-over reminder").Logger()
	ctx = log.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			log.Error().Any("panic", p).Str("stack", string(debug.Stack())).Msg("Panic while sending a cut-over reminder")
		}
	}()
	login := g.br.GetCachedUserLoginByID(job.login)
	if login == nil || login.Client == nil || !login.Client.IsLoggedIn() {
		log.Warn().Msg("No connected login to send the cut-over reminder")
		return
	}
	portal, err := g.br.GetExistingPortalByKey(ctx, job.key)
	if err != nil || remote.RoomOf(portal) == "" {
		log.Warn().Err(err).Msg("No portal room for the cut-over reminder")
		return
	}
	text := fillTemplate(g.cfg.Migration.CutOver.reminder(), job.newRoom, job.staff)
	var replyTo id.EventID
	if job.msgID != "" {
		if msg, err := g.br.DB.Message.GetFirstPartByID(ctx, portal.Receiver, job.msgID); err == nil && msg != nil {
			replyTo = msg.MXID
		}
	}
	if err = g.sendAsStaffReplying(ctx, portal, login, "Reminder sent to the contact", text, replyTo); err != nil {
		log.Err(err).Msg("Failed to send the cut-over reminder")
		return
	}
	log.Debug().Msg("Sent cut-over reminder")
}
