package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// Graph reads users and groups from Microsoft Graph with delta queries:
// the first run lists everything, later runs only what changed, following
// @odata.nextLink pages to the @odata.deltaLink kept for next time. It signs
// in with the client credentials grant (application permissions
// User.Read.All and GroupMember.Read.All).
type Graph struct {
	cfg  Config
	cred Credentials
	http *http.Client
}

// graphState is the cursor kept between runs.
type graphState struct {
	Users  string `json:"users"`
	Groups string `json:"groups"`
}

type graphPage struct {
	Value     []json.RawMessage `json:"value"`
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
}

type graphRemoved struct {
	Reason string `json:"reason"`
}

type graphUser struct {
	ID                string        `json:"id"`
	UserPrincipalName *string       `json:"userPrincipalName"`
	DisplayName       *string       `json:"displayName"`
	AccountEnabled    *bool         `json:"accountEnabled"`
	Removed           *graphRemoved `json:"@removed"`
}

type graphMember struct {
	Type    string        `json:"@odata.type"`
	ID      string        `json:"id"`
	Removed *graphRemoved `json:"@removed"`
}

type graphGroup struct {
	ID          string        `json:"id"`
	DisplayName *string       `json:"displayName"`
	Members     []graphMember `json:"members@delta"`
	Removed     *graphRemoved `json:"@removed"`
}

// Fetch implements Source.
func (g *Graph) Fetch(ctx context.Context, state string) (store.DirChanges, error) {
	var st graphState
	if state != "" {
		if err := json.Unmarshal([]byte(state), &st); err != nil {
			st = graphState{}
		}
	}
	cc := clientcredentials.Config{
		ClientID: g.cred.ClientID, ClientSecret: g.cred.ClientSecret,
		TokenURL:  strings.TrimRight(g.cfg.LoginURL, "/") + "/" + url.PathEscape(g.cfg.TenantID) + "/oauth2/v2.0/token",
		Scopes:    []string{strings.TrimRight(g.cfg.GraphURL, "/") + "/.default"},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, g.http))
	if err != nil {
		return store.DirChanges{}, fmt.Errorf("graph: sign-in with client credentials: %w", err)
	}
	auth := func(r *http.Request) { tok.SetAuthHeader(r) }
	full := st.Users == "" || st.Groups == ""
	ch, err := g.fetch(ctx, auth, st, full)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusGone && !full {
		// The delta token expired (resync required): start over.
		return g.fetch(ctx, auth, graphState{}, true)
	}
	return ch, err
}

func (g *Graph) fetch(ctx context.Context, auth func(*http.Request), st graphState, full bool) (store.DirChanges, error) {
	base := strings.TrimRight(g.cfg.GraphURL, "/") + "/v1.0"
	ch := store.DirChanges{Full: full}
	usersURL := st.Users
	if full {
		usersURL = base + "/users/delta?$select=id,userPrincipalName,displayName,accountEnabled"
	}
	next, err := g.pages(ctx, usersURL, auth, func(raw json.RawMessage) error {
		var u graphUser
		if err := json.Unmarshal(raw, &u); err != nil {
			return err
		}
		if u.Removed != nil {
			ch.RemovedUsers = append(ch.RemovedUsers, u.ID)
			return nil
		}
		du := store.DirUser{ExtID: u.ID, DisplayName: u.DisplayName, Enabled: u.AccountEnabled}
		if u.UserPrincipalName != nil {
			du.Name = *u.UserPrincipalName
		}
		ch.Users = append(ch.Users, du)
		return nil
	})
	if err != nil {
		return store.DirChanges{}, fmt.Errorf("graph: users: %w", err)
	}
	st.Users = next
	groupsURL := st.Groups
	if full {
		groupsURL = base + "/groups/delta?$select=displayName,members"
	}
	byID := map[string]int{}
	next, err = g.pages(ctx, groupsURL, auth, func(raw json.RawMessage) error {
		var gr graphGroup
		if err := json.Unmarshal(raw, &gr); err != nil {
			return err
		}
		if gr.Removed != nil {
			ch.RemovedGroups = append(ch.RemovedGroups, gr.ID)
			return nil
		}
		// A group's members may come in several pieces across pages.
		i, ok := byID[gr.ID]
		if !ok {
			ch.Groups = append(ch.Groups, store.DirGroup{ExtID: gr.ID, Delta: true})
			i = len(ch.Groups) - 1
			byID[gr.ID] = i
		}
		if gr.DisplayName != nil {
			ch.Groups[i].Name = *gr.DisplayName
		}
		for _, m := range gr.Members {
			if m.Type != "" && m.Type != "#microsoft.graph.user" {
				continue // nested groups, devices, service principals
			}
			if m.Removed != nil {
				ch.Groups[i].MembersRemoved = append(ch.Groups[i].MembersRemoved, m.ID)
			} else {
				ch.Groups[i].Members = append(ch.Groups[i].Members, m.ID)
			}
		}
		return nil
	})
	if err != nil {
		return store.DirChanges{}, fmt.Errorf("graph: groups: %w", err)
	}
	st.Groups = next
	b, _ := json.Marshal(st)
	ch.State = string(b)
	return ch, nil
}

// pages follows @odata.nextLink to the end and returns the deltaLink.
func (g *Graph) pages(ctx context.Context, u string, auth func(*http.Request), each func(json.RawMessage) error) (string, error) {
	for n := 0; n < 100000; n++ {
		var p graphPage
		if _, err := get(ctx, g.http, u, auth, &p); err != nil {
			return "", err
		}
		for _, v := range p.Value {
			if err := each(v); err != nil {
				return "", err
			}
		}
		switch {
		case p.NextLink != "":
			u = p.NextLink
		case p.DeltaLink != "":
			return p.DeltaLink, nil
		default:
			return "", errors.New("a page with neither @odata.nextLink nor @odata.deltaLink")
		}
	}
	return "", errors.New("too many pages")
}
