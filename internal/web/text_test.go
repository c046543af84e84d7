package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// Odd bytes in any input are refused with a 4xx naming the field, on both
// engines; PostgreSQL, which cannot store a NUL, never sees one.
func TestBadTextIsRefusedNamingTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		c := u.admin

		t.Run("JSONFields", func(t *testing.T) {
			for _, tt := range []struct {
				name   string
				body   string
				status int
				field  string
			}{
				{"NULInName", `{"email":"a@acme.test","name":"Ada\u0000Admin"}`, 422, "name"},
				{"BELInName", `{"email":"a@acme.test","name":"Ada\u0007"}`, 422, "name"},
				{"ESCInName", `{"email":"a@acme.test","name":"\u001b[31mAda"}`, 422, "name"},
				{"LineBreakInName", `{"email":"a@acme.test","name":"Ada\r\nAdmin"}`, 422, "name"},
				{"InvalidUTF8InEmail", "{\"email\":\"t7\xff@a.test\"}", 400, "email"},
				{"LoneSurrogateInName", `{"email":"a@acme.test","name":"Ada\ud800"}`, 400, "name"},
				{"DuplicateKey", `{"email":"a@acme.test","name":"Ada","email":"b@acme.test"}`, 400, "email"},
				{"TooLongInCharacters", `{"email":"a@acme.test","name":"` + strings.Repeat("é", 201) + `"}`, 422, "name"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					code := usher.EINVALID
					if tt.status == 400 {
						code = "malformed_request"
					}
					c.fail(tt.status, code, "POST", "/api/v1/users", raw(tt.body), tt.field)
				})
			}
			var ok userJSON
			c.ok(http.StatusCreated, "POST", "/api/v1/users", raw(`{"email":"e@acme.test","name":"`+strings.Repeat("é", 150)+`"}`), &ok)
			if ok.Name != strings.Repeat("é", 150) {
				t.Errorf("name: got %q", ok.Name)
			}
			c.ok(http.StatusCreated, "POST", "/api/v1/users", raw(`{"email":"pair@acme.test","name":"Ada \ud83d\ude00"}`), &ok)
			if ok.Name != "Ada 😀" {
				t.Errorf("a surrogate pair escape: got %q", ok.Name)
			}
			c.fail(422, usher.EINVALID, "POST", "/api/v1/subscriptions", map[string]any{
				"product": "draftpro", "plan": "standard", "seats": 1, "contract_number": "A\x00-1",
				"term_start": "2026-01-01", "term_end": "2027-01-01", "contract_manager_id": u.adminU.ID,
			}, "contract_number")
			c.fail(422, usher.EINVALID, "POST", "/api/v1/tokens", map[string]any{"name": "feed\x00"}, "name")
			// Enumerations and codes nested in arrays are checked as well.
			c.fail(422, usher.EINVALID, "PUT", "/api/v1/users/"+itoa(u.adminU.ID)+"/access", raw(
				`{"subscriptions":[{"subscription_id":`+itoa(u.std.ID)+`,"assigned":true,"services":["a\u0000"]}]}`), "subscriptions[0].services[0]")
		})

		t.Run("QueryParameters", func(t *testing.T) {
			for _, path := range []string{
				"/api/v1/users?q=%00",
				"/api/v1/users?q=a%ffb",
				"/api/v1/reports/usage?q=%00",
				"/api/v1/reports/usage?product=%00",
				"/api/v1/audit-log?action=%00",
			} {
				t.Run(path, func(t *testing.T) {
					field := path[strings.Index(path, "?")+1 : strings.Index(path, "=")]
					c.fail(422, usher.EINVALID, "GET", path, nil, field)
				})
			}
		})

		t.Run("IngestRejectsTheLineAndKeepsTheOthers", func(t *testing.T) {
			u.seat("ada@acme.test", u.std)
			good := func(day int) string {
				return `{"user":"ada@acme.test","product":"draftpro","at":"2026-03-0` + string(rune('0'+day)) + `T09:00:00Z"}`
			}
			for _, tt := range []struct{ name, ct, body, says string }{
				{"NDJSONEscapedNUL", "application/x-ndjson",
					good(1) + "\n" + `{"user":"ada@acme.test\u0000","product":"draftpro","at":"2026-03-02T09:00:00Z"}` + "\n" + good(3) + "\n", "NUL"},
				{"NDJSONRawNUL", "application/x-ndjson",
					good(4) + "\n" + "{\"user\":\"ada@acme.test\x00\",\"product\":\"draftpro\",\"at\":\"2026-03-02T09:00:00Z\"}\n" + good(5) + "\n", "invalid character"},
				{"NDJSONInvalidUTF8", "application/x-ndjson",
					good(6) + "\n" + "{\"user\":\"ada\xff@acme.test\",\"product\":\"draftpro\",\"at\":\"2026-03-02T09:00:00Z\"}\n" + good(7) + "\n", "UTF-8"},
				{"CSVNUL", "text/csv",
					"user,product,at\nada@acme.test,draftpro,2026-03-08T09:00:00Z\nada@acme.test,draft\x00pro,2026-03-02T09:00:00Z\nada@acme.test,draftpro,2026-03-09T09:00:00Z\n", "NUL"},
				{"JSONArrayControl", "application/json",
					`[` + good(1) + `,{"user":"ada@acme.test","product":"draftpro\u001b","at":"2026-03-02T09:00:00Z"},` + good(2) + `]`, "U+001B"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					r, res := c.ingest(tt.ct, tt.body)
					if r.Status != http.StatusOK {
						t.Fatalf("got %d %s", r.Status, r.Body)
					}
					line := 2 // of the body: CSV's header is line 1
					if tt.ct == "text/csv" {
						line = 3
					}
					if res.Accepted+res.Duplicates != 2 || res.Rejected != 1 || len(res.Rejections) != 1 ||
						res.Rejections[0].Line != line || !strings.Contains(res.Rejections[0].Reason, tt.says) {
						t.Fatalf("got %+v, want the good lines stored and the bad one refused saying %q", res, tt.says)
					}
				})
			}
		})
	})
}
