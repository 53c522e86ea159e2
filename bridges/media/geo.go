package media

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidGeoURI is returned for a geo: URI that is not "geo:lat,long"
// with coordinates in range.
var ErrInvalidGeoURI = errors.New("invalid geo URI")

// Location is a point with optional names, as a venue has them.
type Location struct {
	Latitude  float64
	Longitude float64
	// Title and Address name a venue; both empty for a plain point.
	Title   string
	Address string
	// Live marks a live location (only its first position is bridged).
	Live bool
}

// GeoURI is the RFC 5870 URI of the point, with 6 decimals (about 10 cm).
func (l Location) GeoURI() string {
	return "geo:" + formatCoord(l.Latitude) + "," + formatCoord(l.Longitude)
}

func formatCoord(f float64) string {
	s := strconv.FormatFloat(f, 'f', 6, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// Body is the readable text of an m.location event.
func (l Location) Body() string {
	var b strings.Builder
	if l.Live {
		b.WriteString("Live location")
	} else {
		b.WriteString("Location")
	}
	if l.Title != "" {
		b.WriteString(": ")
		b.WriteString(l.Title)
		if l.Address != "" {
			b.WriteString(", ")
			b.WriteString(l.Address)
		}
	} else if l.Address != "" {
		b.WriteString(": ")
		b.WriteString(l.Address)
	}
	fmt.Fprintf(&b, " (%s)", l.GeoURI())
	return b.String()
}

// ParseGeoURI reads "geo:lat,long[,alt][;params]" (RFC 5870; the altitude
// and parameters such as u= are ignored).
func ParseGeoURI(uri string) (lat, long float64, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(uri), "geo:")
	if !ok {
		lower := strings.ToLower(strings.TrimSpace(uri))
		if rest, ok = strings.CutPrefix(lower, "geo:"); !ok {
			return 0, 0, fmt.Errorf("%w: %q has no geo: scheme", ErrInvalidGeoURI, uri)
		}
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	parts := strings.Split(rest, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, fmt.Errorf("%w: %q", ErrInvalidGeoURI, uri)
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
	long, err2 := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
	if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(long) ||
		lat < -90 || lat > 90 || long < -180 || long > 180 {
		return 0, 0, fmt.Errorf("%w: %q", ErrInvalidGeoURI, uri)
	}
	return lat, long, nil
}
