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
package governance
