package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidVCard is returned when a vCard has no BEGIN:VCARD.
var ErrInvalidVCard = errors.New("invalid vCard")

// MaxVCardBytes bounds what ParseVCard reads.
const MaxVCardBytes = 256 * 1024

// Contact is what people read from a contact card.
type Contact struct {
	Name   string
	Phones []Phone
}

// Phone is one number of a contact card.
type Phone struct {
	Number string
	// Type is the card's TYPE parameter, lowercased ("cell", "work"), if any.
	Type string
	// WAID is WhatsApp's waid parameter, if any.
	WAID string
}

// ParseVCard reads the first card of a vCard (2.1, 3.0 or 4.0): its
// formatted name (FN, falling back to N) and its TEL lines. Folded lines are
// unfolded; input beyond MaxVCardBytes is ignored.
func ParseVCard(data []byte) (Contact, error) {
	if len(data) > MaxVCardBytes {
		data = data[:MaxVCardBytes]
	}
	var c Contact
	var nameFromN string
	began := false
	for _, line := range unfold(data) {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		params := strings.Split(key, ";")
		name := strings.ToUpper(params[0])
		if i := strings.LastIndexByte(name, '.'); i >= 0 { // item1.TEL
			name = name[i+1:]
		}
		switch name {
		case "BEGIN":
			if strings.EqualFold(strings.TrimSpace(value), "VCARD") {
				began = true
			}
		case "END":
			if began && strings.EqualFold(strings.TrimSpace(value), "VCARD") {
				return finishContact(c, nameFromN), nil
			}
		case "FN":
			if began && c.Name == "" {
				c.Name = unescapeVCard(value)
			}
		case "N":
			if began && nameFromN == "" {
				f := strings.Split(value, ";")
				var parts []string
				// N:Family;Given;Additional;Prefix;Suffix → "Given Family"
				if len(f) > 1 && f[1] != "" {
					parts = append(parts, unescapeVCard(f[1]))
				}
				if f[0] != "" {
					parts = append(parts, unescapeVCard(f[0]))
				}
				nameFromN = strings.Join(parts, " ")
			}
		case "TEL":
			if !began {
				continue
			}
			p := Phone{Number: strings.TrimSpace(unescapeVCard(strings.TrimPrefix(value, "tel:")))}
			for _, param := range params[1:] {
				k, v, hasValue := strings.Cut(param, "=")
				switch {
				case !hasValue: // vCard 2.1: TEL;CELL:...
					if p.Type == "" {
						p.Type = strings.ToLower(k)
					}
				case strings.EqualFold(k, "TYPE") && p.Type == "":
					p.Type = strings.ToLower(strings.Trim(strings.Split(v, ",")[0], `"`))
				case strings.EqualFold(k, "WAID"):
					p.WAID = v
				}
			}
			if p.Number != "" {
				c.Phones = append(c.Phones, p)
			}
		}
	}
	if !began {
		return Contact{}, ErrInvalidVCard
	}
	return finishContact(c, nameFromN), nil
}

func finishContact(c Contact, nameFromN string) Contact {
	if c.Name == "" {
		c.Name = nameFromN
	}
	return c
}

func unfold(data []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxVCardBytes+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if len(lines) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			lines[len(lines)-1] += line[1:]
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

var vcardUnescaper = strings.NewReplacer(`\n`, "\n", `\N`, "\n", `\,`, ",", `\;`, ";", `\\`, `\`)
var vcardEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, ",", `\,`, ";", `\;`)

func unescapeVCard(s string) string { return vcardUnescaper.Replace(strings.TrimSpace(s)) }

// VCard writes a vCard 3.0 for a contact (CRLF line ends).
func (c Contact) VCard() []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCARD\r\nVERSION:3.0\r\n")
	fmt.Fprintf(&b, "FN:%s\r\n", vcardEscaper.Replace(c.Name))
	for _, p := range c.Phones {
		b.WriteString("TEL")
		if p.Type != "" {
			fmt.Fprintf(&b, ";TYPE=%s", strings.ToUpper(p.Type))
		}
		if p.WAID != "" {
			fmt.Fprintf(&b, ";waid=%s", p.WAID)
		}
		fmt.Fprintf(&b, ":%s\r\n", vcardEscaper.Replace(p.Number))
	}
	b.WriteString("END:VCARD\r\n")
	return b.Bytes()
}

// Body is the readable text of a shared contact: "Contact: Name\n+33 1 23…".
func (c Contact) Body() string {
	var b strings.Builder
	b.WriteString("Contact: ")
	if c.Name != "" {
		b.WriteString(c.Name)
	} else {
		b.WriteString("(no name)")
	}
	for _, p := range c.Phones {
		b.WriteString("\n")
		b.WriteString(p.Number)
		if p.Type != "" {
			b.WriteString(" (")
			b.WriteString(p.Type)
			b.WriteString(")")
		}
	}
	return b.String()
}

// FileName is the name of the contact's vCard file.
func (c Contact) FileName() string {
	if strings.TrimSpace(c.Name) == "" {
		return "contact.vcf"
	}
	return SafeFileName(c.Name+".vcf", "contact.vcf", "text/vcard")
}
