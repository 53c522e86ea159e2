// Package htmlguard checks and cleans Matrix HTML (formatted_body) before it
// reaches mautrix's format.HTMLParser, whose cost grows with the nesting
// depth of the tree (it copies the text at every level, and indents every
// line once per enclosing list or quote) and which mishandles a few
// attribute values. The network converters send the plain body of a message
// that Prepare refuses.
package htmlguard

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

const (
	// MaxDepth is the deepest element nesting accepted, counting the
	// <html> and <body> elements that every parsed document has.
	MaxDepth = 100
	// MaxIndentDepth is how deep lists and blockquotes may nest in one
	// another: each level indents every line inside it once more.
	MaxIndentDepth = 8
	// maxListStart bounds <ol start>: format.HTMLParser recurses forever on
	// the smallest int, and overflows on the largest.
	maxListStart = 1_000_000
)

// Prepare parses htmlData, refuses it (ok == false) when it does not parse
// or nests deeper than MaxDepth elements or MaxIndentDepth lists and quotes,
// drops out-of-range <ol start> attributes, calls rewrite (when not nil) on
// every element, and returns the tree rendered back to HTML. The cost is
// linear in the length of htmlData.
func Prepare(htmlData string, rewrite func(*html.Node)) (string, bool) {
	doc, err := html.Parse(strings.NewReader(htmlData))
	if err != nil {
		return "", false
	}
	if !walk(doc, 0, 0, rewrite) {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(len(htmlData))
	if err = html.Render(&sb, doc); err != nil {
		return "", false
	}
	return sb.String(), true
}

func walk(n *html.Node, depth, indent int, rewrite func(*html.Node)) bool {
	if n.Type == html.ElementNode {
		depth++
		switch n.Data {
		case "ol", "ul", "blockquote":
			indent++
		}
		if depth > MaxDepth || indent > MaxIndentDepth {
			return false
		}
		if n.Data == "ol" {
			fixListStart(n)
		}
		if rewrite != nil {
			rewrite(n)
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if !walk(c, depth, indent, rewrite) {
			return false
		}
	}
	return true
}

func fixListStart(n *html.Node) {
	attrs := n.Attr[:0]
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == "start" {
			v, err := strconv.Atoi(strings.TrimSpace(a.Val))
			if err != nil || v < -maxListStart || v > maxListStart {
				continue
			}
		}
		attrs = append(attrs, a)
	}
	n.Attr = attrs
}
