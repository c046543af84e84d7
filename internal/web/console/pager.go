package console

import (
	"net/url"
	"strings"
)

// pager makes First, Previous and Next links for lists paged by cursor.
// The address carries the cursors of the pages between the first and this
// one ("trail"), so Previous needs no query that reads backwards.
type pager struct {
	cursor string   // this page's; "" on the first page
	trail  []string // the cursors of pages 2 … this one's previous
}

func pagerOf(q url.Values) pager {
	p := pager{cursor: q.Get("cursor")}
	if t := q.Get("trail"); t != "" && p.cursor != "" {
		// Cursors are base64url, which has no dots.
		p.trail = strings.Split(t, ".")
	}
	return p
}

// number is this page's number, counting from 1.
func (p pager) number() int {
	if p.cursor == "" {
		return 1
	}
	return len(p.trail) + 2
}

// values is the page as query parameters.
func (p pager) values() url.Values {
	v := url.Values{}
	if p.cursor != "" {
		v.Set("cursor", p.cursor)
		if len(p.trail) > 0 {
			v.Set("trail", strings.Join(p.trail, "."))
		}
	}
	return v
}

// pageLinks are a list's paging links; "" where there is no such page.
type pageLinks struct {
	FirstHref, PrevHref, NextHref string
	PageNumber                    int
}

// links builds the links of this page, with base's filters kept; next is
// the list's next cursor ("" on the last page).
func (p pager) links(path string, base url.Values, next string) pageLinks {
	href := func(q pager) string {
		v := url.Values{}
		for k, x := range base {
			if len(x) > 0 && x[0] != "" {
				v[k] = x
			}
		}
		for k, x := range q.values() {
			v[k] = x
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	out := pageLinks{PageNumber: p.number()}
	if p.cursor != "" {
		out.FirstHref = href(pager{})
		prev := pager{}
		if n := len(p.trail); n > 0 {
			prev = pager{cursor: p.trail[n-1], trail: p.trail[:n-1]}
		}
		out.PrevHref = href(prev)
	}
	if next != "" {
		t := p.trail
		if p.cursor != "" {
			t = append(append([]string(nil), p.trail...), p.cursor)
		}
		out.NextHref = href(pager{cursor: next, trail: t})
	}
	return out
}
