package media

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// Limits holds the byte limits a file must fit: the gateway's own (from the
// config) and the homeserver's upload limit once it is known. The zero value
// has no limit. Safe for concurrent use.
type Limits struct {
	gateway    atomic.Int64
	homeserver atomic.Int64
}

// NewLimits is Limits with a gateway-wide maximum (<= 0: none).
func NewLimits(gateway int64) *Limits {
	l := &Limits{}
	l.SetGateway(gateway)
	return l
}

// SetGateway sets the gateway-wide maximum (<= 0: none).
func (l *Limits) SetGateway(n int64) { l.gateway.Store(max(n, 0)) }

// SetHomeserver records the homeserver's upload limit (m.upload.size); it
// fits bridgev2.MaxFileSizeingNetwork.SetMaxFileSize.
func (l *Limits) SetHomeserver(n int64) { l.homeserver.Store(max(n, 0)) }

// Gateway is the gateway-wide maximum, 0 when none.
func (l *Limits) Gateway() int64 { return l.gateway.Load() }

// Homeserver is the homeserver's upload limit, 0 while unknown.
func (l *Limits) Homeserver() int64 { return l.homeserver.Load() }

// Inbound is the limit for a file going to Matrix: the smaller of the
// gateway's and the homeserver's, 0 when neither is set.
func (l *Limits) Inbound() int64 { return minLimit(l.Gateway(), l.Homeserver()) }

// Outbound is the limit for a file leaving Matrix for a network whose own
// limit is network (0: unknown): the smaller of it and the gateway's. The
// homeserver already refused anything above its own limit.
func (l *Limits) Outbound(network int64) int64 { return minLimit(l.Gateway(), network) }

func minLimit(a, b int64) int64 {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}

// Fits reports whether size bytes fit limit (0: no limit). A negative
// (unknown) size fits; the spooling cap catches it later.
func Fits(size, limit int64) bool { return limit <= 0 || size <= limit }

// FormatSize writes a byte count for people, in binary units named the way
// people read them: "512 B", "1.5 KB", "12.3 MB", "10 MB", "2 GB".
func FormatSize(n int64) string {
	if n < 0 {
		return "unknown size"
	}
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KB", "MB", "GB", "TB"}
	v := float64(n) / unit
	i := 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + units[i]
}

// TooLargeReason is the reason part of a notice for a file over limit.
func TooLargeReason(limit int64) string {
	return fmt.Sprintf("larger than the %s limit", FormatSize(limit))
}

// NotBridgedNotice is the text a user reads in place of a file that did not
// cross: `report.pdf (application/pdf, 12.3 MB) was not bridged: larger than
// the 10 MB limit`. Unknown parts are left out.
func NotBridgedNotice(name, mimeType string, size int64, reason string) string {
	if name == "" {
		name = "A file"
	}
	var details string
	switch {
	case mimeType != "" && size >= 0:
		details = fmt.Sprintf(" (%s, %s)", mimeType, FormatSize(size))
	case mimeType != "":
		details = fmt.Sprintf(" (%s)", mimeType)
	case size >= 0:
		details = fmt.Sprintf(" (%s)", FormatSize(size))
	}
	if reason == "" {
		return name + details + " was not bridged"
	}
	return name + details + " was not bridged: " + reason
}
