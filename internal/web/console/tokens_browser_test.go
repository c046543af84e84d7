package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestAPITokenInBrowser: a contract manager makes an API token in the
// console, uses it from a script on their subscriptions, and revokes it;
// the script's next request is refused.
func TestAPITokenInBrowser(t *testing.T) {
	s := newSite(t)
	browser := newBrowser(t)
	max := s.person(t, browser, "max")

	max.wantText("header nav", "API tokens")
	max.submit(`header nav a[href="/tokens"]`)
	max.wantText("main h1", "API tokens")
	max.wantText("#no-tokens", "You have no API tokens")
	if max.exists(`#scope option[value="ingest"]`) || max.exists(`#scope option[value="scim"]`) {
		t.Error("a contract manager is offered ingest or SCIM tokens")
	}
	max.do(chromedp.SetValue(chromedp.CSS("#name"), "seat script"))
	max.submit("#create-token")
	max.wantText("main h1", "API token created")
	secret := max.text("#token-secret")
	if !strings.HasPrefix(secret, "ush_") {
		t.Fatalf("secret on the page: %q", secret)
	}
	if loc := max.location(); strings.Contains(loc, secret) || !strings.HasSuffix(loc, "/tokens") {
		t.Fatalf("after create the browser is at %s, want /tokens without the secret", loc)
	}
	max.screenshot("token-created")

	api := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := api("/api/v1/subscriptions")
	var subs struct {
		Items []struct {
			ContractNumber string `json:"contract_number"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &subs); status != http.StatusOK || err != nil || len(subs.Items) != 1 || subs.Items[0].ContractNumber != "MS-1" {
		t.Fatalf("GET /subscriptions with the new token: %d %s, want MS-1 only", status, body)
	}
	if status, _ := api(fmt.Sprintf("/api/v1/subscriptions/%d", s.ms.ID)); status != http.StatusOK {
		t.Fatalf("GET own subscription: %d", status)
	}

	max.submit("#done")
	max.wantText("#tokens", "seat script", "full")
	max.submit(`#tokens a.action`)
	max.wantText("#revoke-summary", "seat script", "max@acme.test")
	max.submit("#confirm-revoke")
	if loc := max.location(); !strings.HasSuffix(loc, "/tokens") {
		t.Fatalf("after revoke: %s, want /tokens with no message in the URL", loc)
	}
	max.wantText(".message", "has been revoked")
	max.wantText("#no-tokens", "You have no API tokens")

	if status, _ := api(fmt.Sprintf("/api/v1/subscriptions/%d", s.ms.ID)); status != http.StatusUnauthorized {
		t.Fatalf("GET after revoke: %d, want 401", status)
	}
	// The message was shown once.
	max.open("/tokens")
	if max.exists(".message") {
		t.Error("the revoke message is shown again on the next visit")
	}
}
