package console

import (
	"net/url"
	"testing"
)

// Walking forward three pages and back again lands on the same addresses.
func TestPagerWalksBackTheWayItCame(t *testing.T) {
	base := url.Values{"q": {"ann"}}
	at := func(href string) pager {
		u, err := url.Parse(href)
		if err != nil {
			t.Fatal(err)
		}
		if u.Query().Get("q") != "ann" {
			t.Fatalf("%s lost the filter", href)
		}
		return pagerOf(u.Query())
	}
	p1 := pager{}
	l1 := p1.links("/users", base, "c2")
	if l1.FirstHref != "" || l1.PrevHref != "" || l1.PageNumber != 1 {
		t.Fatalf("page 1: %+v", l1)
	}
	p2 := at(l1.NextHref)
	l2 := p2.links("/users", base, "c3")
	if p2.cursor != "c2" || l2.PageNumber != 2 || l2.PrevHref != "/users?q=ann" {
		t.Fatalf("page 2: %+v %+v", p2, l2)
	}
	p3 := at(l2.NextHref)
	l3 := p3.links("/users", base, "")
	if p3.cursor != "c3" || l3.PageNumber != 3 || l3.NextHref != "" {
		t.Fatalf("page 3: %+v %+v", p3, l3)
	}
	if back := at(l3.PrevHref); back.cursor != "c2" || back.number() != 2 {
		t.Fatalf("Previous from page 3: %+v, want page 2", back)
	}
	if l3.FirstHref != "/users?q=ann" {
		t.Fatalf("First from page 3: %s", l3.FirstHref)
	}
}
