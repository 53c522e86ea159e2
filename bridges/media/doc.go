// Package media is the part of the media pipeline both network connectors
// share: MIME sniffing and file names, size limits and the notice a user
// reads when a file is not bridged, bounded-memory spooling of file bodies
// to private temporary files, and the conversions that do not depend on a
// network's wire format (geo: URIs, vCards, voice waveforms, Matrix caption
// conventions, room feature declarations).
//
// Nothing here performs network I/O; every function is usable offline and is
// table-tested.
package media
