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
	"golang.org/x/net/html/atom"
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
	// maxRoughDepth bounds the nesting seen by the tokenizer pass that runs
	// before the parser: x/net/html's tree builder scans its stack of open
	// elements for many tags, so its cost is the length times the depth.
	maxRoughDepth = 2 * MaxDepth
	// maxRoughWork bounds the sum, over the tags, of the rough depth at each:
	// what the tree builder's stack scans cost: 16 Ki tags 16 deep.
	maxRoughWork = 16 * 1024 * 16
)

// Prepare parses htmlData, refuses it (ok == false) when it does not parse
// or nests deeper than MaxDepth elements or MaxIndentDepth lists and quotes,
// drops out-of-range <ol start> attributes, calls rewrite (when not nil) on
// every element, and returns the tree rendered back to HTML. The cost is
// linear in the length of htmlData.
func Prepare(htmlData string, rewrite func(*html.Node)) (string, bool) {
	if !shallowEnough(htmlData) {
		return "", false
	}
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

var (
	voidElements = map[atom.Atom]bool{atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true,
		atom.Hr: true, atom.Img: true, atom.Input: true, atom.Keygen: true, atom.Link: true, atom.Meta: true,
		atom.Param: true, atom.Source: true, atom.Track: true, atom.Wbr: true, atom.Image: true}
	// Elements whose start tag closes an open element of the same name.
	selfClosing = map[atom.Atom]bool{atom.P: true, atom.Li: true, atom.Dt: true, atom.Dd: true, atom.Tr: true,
		atom.Td: true, atom.Th: true, atom.Option: true}
	// Where an implied close stops looking (roughly the parser's scopes).
	scopeBoundary = map[atom.Atom]bool{atom.Ul: true, atom.Ol: true, atom.Dl: true, atom.Table: true, atom.Tr: true,
		atom.Td: true, atom.Th: true, atom.Select: true, atom.Blockquote: true, atom.Div: true, atom.Button: true,
		atom.Object: true, atom.Template: true}
)

// shallowEnough is a linear first pass over the tokens with a rough model of
// the tree builder's stack (void elements, end tags closing up to their
// start tag, <p>, <li> and the like closing their predecessor). It refuses
// HTML whose rough depth passes maxRoughDepth, that nests lists and quotes
// twice deeper than allowed, or whose tags sit so deep on the whole that
// the parser's stack scans would pass maxRoughWork, before it reaches the
// parser.
func shallowEnough(htmlData string) bool {
	z := html.NewTokenizer(strings.NewReader(htmlData))
	stack := make([]atom.Atom, 0, 16)
	indent := 0 // lists and quotes in stack
	work := 0
	// popTo closes the innermost open a and what is above it; an implied
	// close (scoped) does not look past a list, table or block.
	popTo := func(a atom.Atom, scoped bool) {
		for i := len(stack) - 1; i >= 0; i-- {
			if scoped && scopeBoundary[stack[i]] && stack[i] != a {
				return
			}
			if stack[i] == a {
				for _, e := range stack[i:] {
					if indenting(e) {
						indent--
					}
				}
				stack = stack[:i]
				return
			}
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return true
		case html.StartTagToken, html.SelfClosingTagToken:
			if work += len(stack) + 1; work > maxRoughWork {
				return false
			}
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if voidElements[a] {
				continue
			}
			if selfClosing[a] {
				popTo(a, true)
			}
			stack = append(stack, a)
			if indenting(a) {
				indent++
			}
			if len(stack) > maxRoughDepth || indent > 2*MaxIndentDepth {
				return false
			}
		case html.EndTagToken:
			if work += len(stack) + 1; work > maxRoughWork {
				return false
			}
			name, _ := z.TagName()
			popTo(atom.Lookup(name), false)
		}
	}
}

func indenting(a atom.Atom) bool {
	return a == atom.Ul || a == atom.Ol || a == atom.Blockquote
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
