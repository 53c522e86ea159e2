package tgfmt

import (
	"slices"
	"strconv"
	"unicode/utf16"

	"github.com/gotd/td/tg"
)

// Limits bounds one Telegram message. Split raises Units to what its
// markers need plus a few units (under 50).
type Limits struct {
	Units    int // UTF-16 code units of text
	Entities int // formatting entities
	Parts    int // messages one Matrix message may become
}

// DefaultLimits are Telegram's: 4096 UTF-16 code units of text, and 100
// entities (Telegram drops the ones beyond). A Matrix message becomes at most
// 16 Telegram messages (a whole 64 KiB formatted_body of plain text).
var DefaultLimits = Limits{Units: 4096, Entities: 100, Parts: 16}

// TruncatedMarker ends the last part of a message that needed more than
// Limits.Parts parts.
const TruncatedMarker = "… [message truncated]"

var truncatedUnits = len(utf16.Encode([]rune(TruncatedMarker)))

// Part is one Telegram message of a split text.
type Part struct {
	Text     string
	Entities []tg.MessageEntityClass
}

// Split cuts text (with entities in UTF-16 offsets) into parts that each fit
// lim. Text that fits is returned as one part, unchanged. Otherwise each part
// ends with " (i/n)"; cuts are made at a paragraph break, else a line break,
// else a space, in the second half of the room a part has, preferring
// places no entity spans; else as late as possible, never inside a surrogate
// pair. The blanks around a cut are dropped. Entities crossing a cut are cut and
// re-based on both sides; entities out of range are dropped, and beyond
// lim.Entities on one part (only possible when more than that many span one
// place) the later ones are dropped. Text needing more than lim.Parts parts
// is cut with TruncatedMarker. The cost is linear in the length of text plus
// the number of entities times the number of parts.
func Split(text string, entities []tg.MessageEntityClass, lim Limits) []Part {
	units := utf16.Encode([]rune(text))
	ents := validEntities(entities, len(units))
	if len(units) <= lim.Units && len(ents) <= lim.Entities {
		return []Part{{Text: text, Entities: entities}}
	}
	lim.Parts = max(lim.Parts, 1)
	lim.Entities = max(lim.Entities, 1)
	s := splitter{units: units, ents: ents, lim: lim}
	// Room for the markers and some text, whatever the caller asked.
	s.lim.Units = max(lim.Units, s.markerRoom()+truncatedUnits+8)
	return s.run()
}

type rangeEnt struct {
	start, end int
	ent        tg.MessageEntityClass
}

func validEntities(entities []tg.MessageEntityClass, n int) []rangeEnt {
	out := make([]rangeEnt, 0, len(entities))
	for _, ent := range entities {
		if ent == nil {
			continue
		}
		off, length := ent.GetOffset(), ent.GetLength()
		if off < 0 || length <= 0 || off >= n || length > n-off {
			continue
		}
		out = append(out, rangeEnt{start: off, end: off + length, ent: ent})
	}
	slices.SortStableFunc(out, func(a, b rangeEnt) int { return a.start - b.start })
	return out
}

type splitter struct {
	units []uint16
	ents  []rangeEnt
	lim   Limits
	// spanned[p] > 0 when an entity covers both units p-1 and p, so that a
	// cut at p would go through it.
	spanned []int32
}

type cut struct{ start, end, next int }

// markerRoom is the room kept at the end of every part for " (i/n)".
func (s *splitter) markerRoom() int {
	return len(" (" + strconv.Itoa(s.lim.Parts) + "/" + strconv.Itoa(s.lim.Parts) + ")")
}

func (s *splitter) run() []Part {
	n := len(s.units)
	s.spanned = make([]int32, n+1)
	for _, e := range s.ents {
		if e.end-e.start >= 2 {
			s.spanned[e.start+1]++
			s.spanned[e.end]--
		}
	}
	for p := 1; p <= n; p++ {
		s.spanned[p] += s.spanned[p-1]
	}
	room := max(s.lim.Units-s.markerRoom(), 2)
	truncRoom := max(room-truncatedUnits, 2)
	var cuts []cut
	truncated := false
	next := 0 // index into s.ents of the first entity not yet started
	start := 0
	for start < n {
		hard := s.entityBound(start, next, min(start+room, n))
		if hard >= n {
			cuts = append(cuts, cut{start, n, n})
			break
		}
		if len(cuts) == s.lim.Parts-1 {
			truncated = true
			c := s.choose(start, min(hard, start+truncRoom))
			cuts = append(cuts, cut{c.start, c.end, n})
			break
		}
		c := s.choose(start, hard)
		cuts = append(cuts, c)
		for next < len(s.ents) && s.ents[next].start < c.end {
			next++
		}
		start = c.next
	}
	parts := make([]Part, 0, len(cuts))
	for i, c := range cuts {
		text := string(utf16.Decode(s.units[c.start:c.end]))
		if truncated && i == len(cuts)-1 {
			text += TruncatedMarker
		}
		text += " (" + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(cuts)) + ")"
		parts = append(parts, Part{Text: text, Entities: s.entitiesIn(c.start, c.end)})
	}
	return parts
}

// entityBound lowers hard so that a part starting at start holds at most
// lim.Entities entities: those spanning start, then those starting after it.
// It stays above start, so each part holds some text.
func (s *splitter) entityBound(start, next, hard int) int {
	k := next
	for k < len(s.ents) && s.ents[k].start < start {
		k++
	}
	active := 0
	for _, e := range s.ents[:k] {
		if e.end > start {
			active++
		}
	}
	if left := s.lim.Entities - active; left >= 0 && k+left < len(s.ents) && s.ents[k+left].start < hard && s.ents[k+left].start > start {
		return s.ents[k+left].start
	}
	return hard
}

// choose picks where to cut a part that starts at start and must end by
// hard (< len(units)).
func (s *splitter) choose(start, hard int) cut {
	lower := start + (hard-start)/2
	// best[rank] is the latest cut of that rank: 0 paragraph, 1 line,
	// 2 space; +3 when an entity spans the cut.
	var best [6]cut
	var found [6]bool
	for q := hard; q > lower; q-- {
		if q >= len(s.units) {
			continue
		}
		var rank int
		var c cut
		switch {
		case s.units[q] == '\n' && q+1 < len(s.units) && s.units[q+1] == '\n':
			rank, c = 0, cut{start, q, q + 2}
		case s.units[q] == '\n':
			rank, c = 1, cut{start, q, q + 1}
		case s.units[q] == ' ':
			rank, c = 2, cut{start, q, q + 1}
		default:
			continue
		}
		if s.spanned[q] > 0 || (c.next <= len(s.units)-1 && s.spanned[c.next] > 0) {
			rank += 3
		}
		if !found[rank] {
			best[rank], found[rank] = c, true
		}
	}
	for rank := range best {
		if found[rank] {
			return s.trimBlanks(best[rank])
		}
	}
	end := s.hardCut(start, hard)
	return cut{start, end, end}
}

// trimBlanks moves the end of a cut back over the spaces and newlines before
// it, and the start of the next part past those after it, so that no part
// begins or ends with blanks (Telegram trims them, which would shift
// entities).
func (s *splitter) trimBlanks(c cut) cut {
	for c.end > c.start+1 && isBlank(s.units[c.end-1]) {
		c.end--
	}
	for c.next < len(s.units) && isBlank(s.units[c.next]) {
		c.next++
	}
	return c
}

func isBlank(u uint16) bool { return u == ' ' || u == '\n' }

// hardCut returns hard, or one less when hard would split a surrogate pair.
func (s *splitter) hardCut(start, hard int) int {
	if hard < len(s.units) && hard-1 > start && utf16.IsSurrogate(rune(s.units[hard])) && s.units[hard] >= 0xDC00 {
		return hard - 1
	}
	return hard
}

// entitiesIn returns the entities over [start, end), cut to it and re-based,
// at most lim.Entities of them.
func (s *splitter) entitiesIn(start, end int) []tg.MessageEntityClass {
	var out []tg.MessageEntityClass
	for _, e := range s.ents {
		if e.start >= end {
			break
		}
		a, b := max(e.start, start), min(e.end, end)
		if b <= a {
			continue
		}
		if len(out) == s.lim.Entities {
			break
		}
		if ent := withRange(e.ent, a-start, b-a); ent != nil {
			out = append(out, ent)
		}
	}
	return out
}

// withRange returns a copy of ent with the given offset and length, or nil
// for an entity type this package does not produce.
func withRange(ent tg.MessageEntityClass, offset, length int) tg.MessageEntityClass {
	var c tg.MessageEntityClass
	switch e := ent.(type) {
	case *tg.MessageEntityBold:
		v := *e
		c = &v
	case *tg.MessageEntityItalic:
		v := *e
		c = &v
	case *tg.MessageEntityUnderline:
		v := *e
		c = &v
	case *tg.MessageEntityStrike:
		v := *e
		c = &v
	case *tg.MessageEntitySpoiler:
		v := *e
		c = &v
	case *tg.MessageEntityCode:
		v := *e
		c = &v
	case *tg.MessageEntityPre:
		v := *e
		c = &v
	case *tg.MessageEntityBlockquote:
		v := *e
		c = &v
	case *tg.MessageEntityTextURL:
		v := *e
		c = &v
	case *tg.MessageEntityURL:
		v := *e
		c = &v
	case *tg.MessageEntityEmail:
		v := *e
		c = &v
	case *tg.MessageEntityMentionName:
		v := *e
		c = &v
	case *tg.InputMessageEntityMentionName:
		v := *e
		c = &v
	default:
		return nil
	}
	setOffset(c, offset, length)
	return c
}
