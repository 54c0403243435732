package dirsync

// Local stand-ins for Microsoft Graph and Okta, which cannot run here.
// They follow the vendors' documented request and response shapes:
//
//   - Microsoft identity platform client credentials token request
//     (POST /{tenant}/oauth2/v2.0/token, form-encoded client_id,
//     client_secret, scope, grant_type=client_credentials); AADSTS errors.
//   - Graph delta queries (GET /v1.0/users/delta, /v1.0/groups/delta):
//     "value" pages linked by "@odata.nextLink", the last with
//     "@odata.deltaLink"; removed objects as {"id", "@removed":{"reason"}};
//     group members in "members@delta" with "@odata.type"; 429 with
//     Retry-After in seconds; 410 Gone when a delta token is no longer
//     valid.
//   - Okta Users and Groups APIs (GET /api/v1/users, /api/v1/groups,
//     /api/v1/groups/{id}/users) with "Authorization: SSWS token", JSON
//     arrays, Link: <...>; rel="next" paging via ?after=; 429 with
//     X-Rate-Limit-Limit/-Remaining/-Reset (Unix seconds); 401 E0000011.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- Graph

type gUser struct {
	id, upn, display string
	enabled          bool
	deleted          bool
	version          int
}

type gMemberEvent struct {
	group, user string
	removed     bool
	version     int
}

type gGroup struct {
	id, name string
	deleted  bool
	version  int
}

type graphStandIn struct {
	t            *testing.T
	mu           sync.Mutex
	tenant       string
	clientID     string
	clientSecret string
	version      int
	users        map[string]*gUser
	groups       map[string]*gGroup
	members      []gMemberEvent
	throttleNext int // answer this many requests with 429 first
	expireTokens bool
	srv          *httptest.Server
	requests     []string
}

func newGraphStandIn(t *testing.T) *graphStandIn {
	g := &graphStandIn{t: t, tenant: "11111111-2222-3333-4444-555555555555", clientID: "app-id", clientSecret: "app-secret",
		users: map[string]*gUser{}, groups: map[string]*gGroup{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *graphStandIn) addUser(id, upn, display string, enabled bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	g.users[id] = &gUser{id: id, upn: upn, display: display, enabled: enabled, version: g.version}
}

func (g *graphStandIn) change(id string, fn func(*gUser)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	fn(g.users[id])
	g.users[id].version = g.version
}

func (g *graphStandIn) addGroup(id, name string, members ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	g.groups[id] = &gGroup{id: id, name: name, version: g.version}
	for _, m := range members {
		g.members = append(g.members, gMemberEvent{group: id, user: m, version: g.version})
	}
}

func (g *graphStandIn) member(group, user string, removed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	g.members = append(g.members, gMemberEvent{group: group, user: user, removed: removed, version: g.version})
	g.groups[group].version = g.version
}

func (g *graphStandIn) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/"+g.tenant+"/oauth2/v2.0/token" {
		g.token(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer graph-token-1" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`)
		return
	}
	if g.throttleNext > 0 {
		g.throttleNext--
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"code":"TooManyRequests","message":"Too many requests."}}`)
		return
	}
	q := r.URL.Query()
	since := -1 // full
	if dt := q.Get("$deltatoken"); dt != "" {
		n, err := strconv.Atoi(dt)
		if err != nil || g.expireTokens {
			w.WriteHeader(http.StatusGone)
			fmt.Fprint(w, `{"error":{"code":"resyncRequired","message":"Resync required. Replace any local cached copy of the collection."}}`)
			return
		}
		since = n
	}
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	if q.Get("$skiptoken") != "" {
		since, _ = strconv.Atoi(q.Get("since"))
	}
	switch r.URL.Path {
	case "/v1.0/users/delta":
		var items []map[string]any
		ids := make([]string, 0, len(g.users))
		for id := range g.users {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			u := g.users[id]
			if u.version <= since {
				continue
			}
			if u.deleted {
				if since >= 0 {
					items = append(items, map[string]any{"id": u.id, "@removed": map[string]string{"reason": "changed"}})
				}
				continue
			}
			items = append(items, map[string]any{"@odata.type": "#microsoft.graph.user", "id": u.id, "userPrincipalName": u.upn, "displayName": u.display, "accountEnabled": u.enabled})
		}
		g.page(w, r.URL.Path, "https://graph.microsoft.com/v1.0/$metadata#users(userPrincipalName,displayName,accountEnabled)", items, skip, since)
	case "/v1.0/groups/delta":
		var items []map[string]any
		ids := make([]string, 0, len(g.groups))
		for id := range g.groups {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			gr := g.groups[id]
			if gr.version <= since {
				continue
			}
			if gr.deleted {
				items = append(items, map[string]any{"id": gr.id, "@removed": map[string]string{"reason": "deleted"}})
				continue
			}
			var ms []map[string]any
			current := map[string]bool{}
			for _, e := range g.members {
				if e.group != id {
					continue
				}
				if since < 0 {
					current[e.user] = !e.removed
				} else if e.version > since {
					m := map[string]any{"@odata.type": "#microsoft.graph.user", "id": e.user}
					if e.removed {
						m["@removed"] = map[string]string{"reason": "deleted"}
					}
					ms = append(ms, m)
				}
			}
			if since < 0 {
				var us []string
				for u, in := range current {
					if in {
						us = append(us, u)
					}
				}
				sort.Strings(us)
				for _, u := range us {
					ms = append(ms, map[string]any{"@odata.type": "#microsoft.graph.user", "id": u})
				}
				// A nested group among the members is not a user.
				ms = append(ms, map[string]any{"@odata.type": "#microsoft.graph.group", "id": "nested-group"})
			}
			items = append(items, map[string]any{"@odata.type": "#microsoft.graph.group", "id": gr.id, "displayName": gr.name, "members@delta": ms})
		}
		g.page(w, r.URL.Path, "https://graph.microsoft.com/v1.0/$metadata#groups(displayName,members)", items, skip, since)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"Request_ResourceNotFound","message":"Resource not found."}}`)
	}
}

// page writes up to two items from skip, with a nextLink or a deltaLink.
func (g *graphStandIn) page(w http.ResponseWriter, path, context string, items []map[string]any, skip, since int) {
	const size = 2
	end := min(skip+size, len(items))
	out := map[string]any{"@odata.context": context, "value": items[min(skip, len(items)):end]}
	if end < len(items) {
		out["@odata.nextLink"] = fmt.Sprintf("%s%s?$skiptoken=%d&since=%d", g.srv.URL, path, end, since)
	} else {
		out["@odata.deltaLink"] = fmt.Sprintf("%s%s?$deltatoken=%d", g.srv.URL, path, g.version)
	}
	json.NewEncoder(w).Encode(out)
}

func (g *graphStandIn) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain the following parameter: 'grant_type'."}`)
		return
	}
	r.ParseForm()
	switch {
	case r.Form.Get("grant_type") != "client_credentials":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type","error_description":"AADSTS70003: The app requested an unsupported grant type."}`)
	case r.Form.Get("scope") != "https://graph.microsoft.com/.default" && r.Form.Get("scope") != g.srv.URL+"/.default":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' is not valid."}`)
	case r.Form.Get("client_id") != g.clientID || r.Form.Get("client_secret") != g.clientSecret:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.","error_codes":[7000215]}`)
	default:
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"graph-token-1"}`)
	}
}

// ---- Okta

type oUser struct {
	id, login, first, last, status string
}

type oktaStandIn struct {
	mu           sync.Mutex
	token        string
	users        []*oUser
	groups       map[string][]string // group id → user ids
	groupNames   map[string]string
	throttleNext int
	srv          *httptest.Server
}

func newOktaStandIn(t *testing.T) *oktaStandIn {
	o := &oktaStandIn{token: "00okta-api-token", groups: map[string][]string{}, groupNames: map[string]string{}}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *oktaStandIn) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Rate-Limit-Limit", "600")
	w.Header().Set("X-Rate-Limit-Remaining", "599")
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	if r.Header.Get("Authorization") != "SSWS "+o.token {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oae1","errorCauses":[]}`)
		return
	}
	if o.throttleNext > 0 {
		o.throttleNext--
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Unix(), 10))
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"oae2","errorCauses":[]}`)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 2 {
		limit = 2 // small pages, so paging is exercised
	}
	after := r.URL.Query().Get("after")
	path := r.URL.Path
	type item struct {
		id  string
		obj any
	}
	var items []item
	userObj := func(u *oUser) any {
		return map[string]any{"id": u.id, "status": u.status, "created": "2026-01-01T00:00:00.000Z",
			"profile": map[string]any{"login": u.login, "email": u.login, "firstName": u.first, "lastName": u.last},
			"_links":  map[string]any{"self": map[string]string{"href": o.srv.URL + "/api/v1/users/" + u.id}}}
	}
	switch {
	case path == "/api/v1/users":
		for _, u := range o.users {
			if u.status != "DEPROVISIONED" { // the list omits deprovisioned users by default
				items = append(items, item{u.id, userObj(u)})
			}
		}
	case path == "/api/v1/groups":
		var ids []string
		for id := range o.groupNames {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			items = append(items, item{id, map[string]any{"id": id, "type": "OKTA_GROUP", "profile": map[string]string{"name": o.groupNames[id], "description": ""}}})
		}
	case strings.HasPrefix(path, "/api/v1/groups/") && strings.HasSuffix(path, "/users"):
		gid := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v1/groups/"), "/users")
		for _, uid := range o.groups[gid] {
			for _, u := range o.users {
				if u.id == uid {
					items = append(items, item{u.id, userObj(u)})
				}
			}
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method","errorCauses":[]}`)
		return
	}
	start := 0
	if after != "" {
		for i, it := range items {
			if it.id == after {
				start = i + 1
			}
		}
	}
	end := min(start+limit, len(items))
	page := []any{}
	for _, it := range items[start:end] {
		page = append(page, it.obj)
	}
	self := o.srv.URL + r.URL.RequestURI()
	w.Header().Add("Link", "<"+self+`>; rel="self"`)
	if end < len(items) {
		w.Header().Add("Link", fmt.Sprintf(`<%s%s?after=%s&limit=%d>; rel="next"`, o.srv.URL, path, items[end-1].id, limit))
	}
	json.NewEncoder(w).Encode(page)
}
