package dirsync

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// Okta reads users and groups with Okta's Users and Groups APIs, following
// the Link rel="next" pages, signed with an API token (SSWS). Each run
// reads the whole directory (Okta has no delta feed for these APIs).
type Okta struct {
	cfg   Config
	token string
	http  *http.Client
}

type oktaUser struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login       string `json:"login"`
		FirstName   string `json:"firstName"`
		LastName    string `json:"lastName"`
		DisplayName string `json:"displayName"`
	} `json:"profile"`
}

type oktaGroup struct {
	ID      string `json:"id"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
}

// oktaEnabled lists the statuses in which a person can sign in.
var oktaEnabled = map[string]bool{"ACTIVE": true, "PASSWORD_EXPIRED": true, "LOCKED_OUT": true, "RECOVERY": true}

// Fetch implements Source.
func (o *Okta) Fetch(ctx context.Context, _ string) (store.DirChanges, error) {
	base := strings.TrimRight(o.cfg.OrgURL, "/") + "/api/v1"
	ch := store.DirChanges{Full: true}
	err := pages(ctx, o, base+"/users?limit=200", func(us []oktaUser) {
		for _, u := range us {
			name := u.Profile.DisplayName
			if name == "" {
				name = strings.TrimSpace(u.Profile.FirstName + " " + u.Profile.LastName)
			}
			enabled := oktaEnabled[u.Status]
			ch.Users = append(ch.Users, store.DirUser{ExtID: u.ID, Name: u.Profile.Login, DisplayName: &name, Enabled: &enabled})
		}
	})
	if err != nil {
		return store.DirChanges{}, err
	}
	var groups []oktaGroup
	if err := pages(ctx, o, base+"/groups?limit=200", func(gs []oktaGroup) { groups = append(groups, gs...) }); err != nil {
		return store.DirChanges{}, err
	}
	for _, g := range groups {
		dg := store.DirGroup{ExtID: g.ID, Name: g.Profile.Name}
		err := pages(ctx, o, base+"/groups/"+url.PathEscape(g.ID)+"/users?limit=200", func(us []oktaUser) {
			for _, u := range us {
				dg.Members = append(dg.Members, u.ID)
			}
		})
		if err != nil {
			return store.DirChanges{}, err
		}
		ch.Groups = append(ch.Groups, dg)
	}
	return ch, nil
}

var nextLink = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// pages fetches u and every Link rel="next" page after it.
func pages[T any](ctx context.Context, o *Okta, u string, each func([]T)) error {
	auth := func(r *http.Request) { r.Header.Set("Authorization", "SSWS "+o.token) }
	for n := 0; n < 100000; n++ {
		var page []T
		h, err := get(ctx, o.http, u, auth, &page)
		if err != nil {
			return err
		}
		each(page)
		next := ""
		for _, l := range h.Values("Link") {
			if m := nextLink.FindStringSubmatch(l); m != nil {
				next = m[1]
			}
		}
		if next == "" {
			return nil
		}
		u = next
	}
	return nil
}
