// Package governance is the gateway's control over what crosses the border
// between Matrix and the remote networks (DESIGN.md, decision 6).
//
// The network-independent core lives in subpackages that do no bridging
// themselves and are tested on their own:
//
//   - store: the one database schema (and version table) of every governance
//     table, so that a single upgrade table migrates them together;
//   - policy: per-network modes and allow/deny rules from the config file and
//     from admins at runtime, and the evaluation of one request against them;
//   - audit: the hash-chained, append-only audit log and the registry of
//     external contacts, with CSV/JSON export;
//   - approval: the durable queue of requests for new outside chats, with the
//     messages held until an admin decides.
//
// The gate that applies them between the connectors and the bridge core, the
// admin commands and the HTTP admin API wire these packages in.
//
// # Media
//
// Files pass the gate like text, plus three things of their own:
//
//   - Media rules (network.governance.media, policy.MediaConfig): per network
//     (or "*") and direction, a maximum size and allowed or refused MIME
//     types. Connectors ask the gate's CheckMedia (remote.MediaCheck, handed
//     to them by the gateway) before a file crosses. A refusal is a
//     *remote.Refusal whose reason names the type, the size and the limit
//     (never a number or a file name); the gate writes a media_refused audit
//     entry, and the connector tells the staff member where the file would
//     have been: outbound as the message's failed status and notice
//     (remote.MessageStatus), inbound as a notice in the portal instead of
//     the file, with the message's text kept. The gate posts no notice of
//     its own.
//   - Counting: a bridged remote event that lists media (remote.MediaCarrier)
//     that the rules let through counts as media in the contact registry
//     (media_in); a message the connector reports as sent with HasMedia
//     counts as media_out. A held event is counted when it is delivered, a
//     refused file never.
//   - Holding: while a chat waits for approval, the gate stores the
//     connector's HoldPayload, which for media is the network's own
//     reference to the file (Telegram: the raw tg.Message with its file
//     reference; WhatsApp: the message proto with media key, hashes and
//     direct path), never the bytes: the connector downloads the file when
//     the event is delivered after approval (refreshing an expired
//     reference as the network allows). A payload over gate.MaxHeldPayload
//     is refused, not stored.
package governance
