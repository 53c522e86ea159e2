package remote

import (
	"context"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/passerelle/passerelle/bridges/netid"
)

// ReconnectCommand is the bot command that connects a staff member's logins
// again with their stored keys (no new pairing or code): after WhatsApp
// handed the session to another connection (stream replaced), or after any
// disconnection the staff member wants to end now.
const ReconnectCommand = "reconnect"

// RegisterReconnect adds the reconnect command to the bridge's command
// processor. Every network connector calls it from Init; registering it
// twice is harmless (the same handler replaces itself).
func RegisterReconnect(br *bridgev2.Bridge) {
	if br == nil {
		return
	}
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandlers(reconnectHandler)
	}
}

var reconnectHandler = &commands.FullHandler{
	Name: ReconnectCommand,
	Help: commands.HelpMeta{
		Section: commands.HelpSectionAuth,
		Description: "Connect your WhatsApp and Telegram logins again with their stored keys (no new pairing), " +
			"e.g. after another WhatsApp session took over. Without an argument: the logins that are not connected.",
		Args: "[_login ID, name or network_]",
	},
	RequiresLogin: true,
	Func:          cmdReconnect,
}

// notConnected reports whether a login is not connected now, as its
// client says (bridgev2's last bridge state is not safe to read from
// another goroutine).
func notConnected(ul *bridgev2.UserLogin) bool {
	return !ul.Client.IsLoggedIn()
}

// reconnectTargets picks the logins the command acts on: with an argument,
// the logins whose ID, remote name or network it names; without, the
// logins that are not logged in (WhatsApp: not connected; Telegram: the
// session was refused).
func reconnectTargets(logins []*bridgev2.UserLogin, arg string) []*bridgev2.UserLogin {
	var out []*bridgev2.UserLogin
	for _, ul := range logins {
		if ul.Client == nil {
			continue
		}
		if arg == "" {
			if notConnected(ul) {
				out = append(out, ul)
			}
			continue
		}
		if string(ul.ID) == arg || strings.EqualFold(ul.RemoteName, arg) || strings.EqualFold(netid.Network(string(ul.ID)), arg) {
			out = append(out, ul)
		}
	}
	return out
}

func loginName(ul *bridgev2.UserLogin) string {
	network := netid.Network(string(ul.ID))
	switch network {
	case "whatsapp":
		network = "WhatsApp"
	case "telegram":
		network = "Telegram"
	}
	name := ul.RemoteName
	if name == "" {
		name = string(ul.ID)
	}
	return network + " login " + name
}

func cmdReconnect(ce *commands.Event) {
	arg := strings.TrimSpace(strings.Join(ce.Args, " "))
	targets := reconnectTargets(ce.User.GetUserLogins(), arg)
	if len(targets) == 0 {
		if arg != "" {
			ce.Reply("You have no login named `%s`; `list-logins` shows them.", arg)
		} else {
			ce.Reply("All your logins are connected. To reconnect one anyway, name it: `%s <login ID>`.", ReconnectCommand)
		}
		return
	}
	for _, ul := range targets {
		log := ul.Log.With().Str("action", "reconnect command").Logger()
		log.Info().Msg("Reconnecting login on the staff member's request")
		ul.Client.Disconnect()
		// The connection outlives the command: it runs in the bridge's
		// background context, as bridgev2's own (re)connections do.
		ul.Client.Connect(log.WithContext(context.WithoutCancel(ce.Ctx)))
		ce.Reply("Reconnecting your %s with its stored keys (no new pairing).", loginName(ul))
	}
}
