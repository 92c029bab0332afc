package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/xsell/xsell/api"
	"github.com/xsell/xsell/internal/httpapi"
	"github.com/xsell/xsell/internal/loyalty"
	"github.com/xsell/xsell/internal/openapitest"
)

// ginParam is a path parameter as Gin writes it (:key or *rest).
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute fails on a route the server has and the document lacks, and on
// an operation the document has and the server lacks: a new route is documented in the same
// change that adds it (api/openapi.json), and a removed one leaves the document with it.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s, err := httpapi.New(httpapi.Config{}, httpapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, r := range s.Engine().Routes() {
		served = append(served, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(served)
	documented := openapitest.Operations(t)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but not in api/openapi.json", r)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("api/openapi.json documents %s, which the server does not serve", op)
		}
	}
	if len(served) == 0 {
		t.Fatal("the server has no routes")
	}
}

// TestOpenAPIOperationsSayWhoMayCall checks that every operation names the roles it lets
// through, and that operations open to anyone say so, so that an integrator can tell which
// key a call needs.
func TestOpenAPIOperationsSayWhoMayCall(t *testing.T) {
	doc := openapitest.Document(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			roles, ok := op.Extensions["x-roles"].([]any)
			if !ok {
				t.Errorf("%s %s: no x-roles", method, path)
				continue
			}
			// security: [] or an empty requirement among others: no key needed.
			open := op.Security != nil && (len(*op.Security) == 0 ||
				slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 }))
			if open != (len(roles) == 0) {
				t.Errorf("%s %s: x-roles %v, open to callers without a key: %v", method, path, roles, open)
			}
			if !open && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s %s needs a key and does not document 401", method, path)
			}
		}
	}
}

// TestOpenAPIRolesAreEnforced calls every operation that needs a key with a key of each role:
// the roles its x-roles lists get past authentication (whatever the handler then answers:
// this server has no database), the others get 403. So x-roles cannot drift from the routes.
func TestOpenAPIRolesAreEnforced(t *testing.T) {
	secrets := map[string]string{}
	var spec []string
	for _, role := range []string{"admin", "checkout", "analyst"} {
		secrets[role] = role + "-roles-test-0123456789abcdef0123456789"
		spec = append(spec, role+":"+secrets[role])
	}
	keys, err := httpapi.ParseAPIKeys(strings.Join(spec, ","))
	if err != nil {
		t.Fatal(err)
	}
	// A loyalty service without a database: the loyalty routes refuse to run unwired, before
	// they authenticate.
	s, err := httpapi.New(httpapi.Config{APIKeys: keys}, httpapi.Deps{Loyalty: loyalty.New(nil, loyalty.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	pathParam := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range openapitest.Document(t).Paths.Map() {
		for method, op := range item.Operations() {
			roles, _ := op.Extensions["x-roles"].([]any)
			if len(roles) == 0 {
				continue
			}
			url := pathParam.ReplaceAllString(path, "1")
			for role, secret := range secrets {
				req := httptest.NewRequest(method, url, nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				allowed := slices.Contains(roles, any(role))
				if forbidden := rec.Code == http.StatusForbidden; forbidden == allowed {
					t.Errorf("%s %s with the %s key: %d; x-roles %v", method, path, role, rec.Code, roles)
				}
			}
		}
	}
}

// TestOpenAPIServed checks that GET /openapi.json answers the document without a key.
func TestOpenAPIServed(t *testing.T) {
	s, err := httpapi.New(httpapi.Config{}, httpapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := openapitest.Client(t).Get(ts.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(got, api.OpenAPI()) {
		t.Fatal("GET /openapi.json is not the document in api/openapi.json")
	}
}

// TestOpenAPITransportCatchesDrift checks that the validating transport fails a test whose
// server answers what the document does not say, so that the handler tests' checks can fail.
func TestOpenAPITransportCatchesDrift(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
	}{
		{"undocumented field", 200, `{"status":"ok","extra":1}`},
		{"undocumented status", 418, `{"status":"ok"}`},
		{"wrong type", 200, `{"status":3}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer ts.Close()
			rec := &recordingT{TB: t}
			resp, err := (&http.Client{Transport: openapitest.Transport(rec, nil)}).Get(ts.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(rec.errors) == 0 {
				t.Fatalf("%d %s passed as documented", c.status, c.body)
			}
		})
	}
	// An outage answered without Retry-After.
	ts503 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"the database is down","request_id":"r"}}`)
	}))
	defer ts503.Close()
	rec503 := &recordingT{TB: t}
	resp, err := (&http.Client{Transport: openapitest.Transport(rec503, nil)}).Get(ts503.URL + "/v1/loyalty/program")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(rec503.errors) == 0 {
		t.Fatal("a 503 without Retry-After passed as documented")
	}

	// And a request the document refuses that the server accepts.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"accepted":1,"duplicates":0}`)
	}))
	defer ts.Close()
	rec := &recordingT{TB: t}
	resp, err = (&http.Client{Transport: openapitest.Transport(rec, nil)}).Post(ts.URL+"/v1/events", "application/json",
		strings.NewReader(`{"events":[{"id":"e1","type":"offer_clicked","shopper_id":"s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(rec.errors) == 0 {
		t.Fatal("an event type the document does not know was accepted without complaint")
	}
}

// recordingT records the failures the transport reports instead of failing the test.
type recordingT struct {
	testing.TB
	errors []string
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}
