package telegram

import "github.com/passerelle/passerelle/bridges/remote"

// outboundGroupChange is the outbound kind of a change to a group's
// settings from Matrix.
const outboundGroupChange = remote.OutboundMessage
