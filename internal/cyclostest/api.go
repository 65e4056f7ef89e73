// The REST API under /api: request recording, outages, routing,
// authentication and the channel check, then the ticket operations.
package cyclostest

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
)

// call is one authenticated API request on its way to an operation.
type call struct {
	r      *http.Request
	body   []byte
	caller *user
	user   string // the {user} path segment
	ticket string // the {ticket} path segment
}

type operation func(w http.ResponseWriter, c *call)

// serveAPI is the front door of every API request: it records the request,
// then applies outages (FailNext), routing, authentication and the channel,
// in that order. An unknown path is a 404 whoever asks, since no operation
// exists there to require credentials.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method:            r.Method,
		Path:              r.URL.Path,
		Query:             cloneValues(r.URL.Query()),
		AccessClientToken: r.Header.Get("Access-Client-Token") != "",
		Basic:             len(auth) > 6 && strings.EqualFold(auth[:6], "basic "),
		Channel:           r.Header.Get("Channel"),
		Body:              body,
	})
	failing, status := s.failNext > 0, s.failStatus
	if failing {
		s.failNext--
	}
	s.mu.Unlock()
	if failing {
		writeError(w, errUnexpected(status))
		return
	}

	c := &call{r: r, body: body}
	op := s.route(r.Method, r.URL.Path, c)
	if op == nil {
		writeError(w, errUnknownPath())
		return
	}
	caller, err := s.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if s.channel != "" && r.Header.Get("Channel") != s.channel {
		writeError(w, errInaccessibleChannel())
		return
	}
	c.caller = caller
	op(w, c)
}

// route finds the operation for a method and path and fills in the path
// segments. POST /{user}/tickets exists only from 4.13 on.
func (s *Server) route(method, path string, c *call) operation {
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return nil
	}
	p := strings.Split(rest, "/")
	if slices.Contains(p, "") {
		return nil
	}
	switch {
	case method == http.MethodPost && len(p) == 1 && p[0] == "tickets":
		return s.createOwn
	case method == http.MethodPost && len(p) == 2 && p[1] == "tickets" && s.version != "4.12":
		c.user = p[0]
		return s.createFor
	case method == http.MethodGet && len(p) == 2 && p[0] == "tickets":
		c.ticket = p[1]
		return s.viewTicket
	case method == http.MethodPost && len(p) == 3 && p[0] == "tickets":
		c.ticket = p[1]
		switch p[2] {
		case "approve":
			return s.approveTicket
		case "process":
			return s.processTicket
		case "cancel":
			return s.cancelTicket
		}
	}
	return nil
}

// authenticate identifies the caller by the spec's security schemes: an
// access client token (the shop's), or Basic with a login and password.
// Sessions and OAuth tokens are not modelled; any such credential is
// answered as an invalid one.
func (s *Server) authenticate(r *http.Request) (*user, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok := r.Header.Get("Access-Client-Token"); tok != "" {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1 {
			return s.shop, nil
		}
		return nil, errInvalidAccessClient()
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, cred, _ := strings.Cut(auth, " ")
		switch {
		case strings.EqualFold(scheme, "Basic"):
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
			if err != nil {
				return nil, errLogin()
			}
			login, password, _ := strings.Cut(string(raw), ":")
			if u := s.checkPassword(login, password); u != nil {
				return u, nil
			}
			return nil, errLogin()
		case strings.EqualFold(scheme, "Bearer"):
			return nil, errInvalidAccessToken()
		}
		return nil, errLogin()
	}
	if r.Header.Get("Session-Token") != "" {
		return nil, errLoggedOut()
	}
	return nil, errMissingAuthorization()
}

// checkPassword is the user with that login and password, or nil.
// Callers hold s.mu.
func (s *Server) checkPassword(login, password string) *user {
	u := s.users[login]
	if u == nil || subtle.ConstantTimeCompare([]byte(password), []byte(u.password)) != 1 {
		return nil
	}
	return u
}

// createOwn is the deprecated POST /tickets: the caller owns the ticket.
func (s *Server) createOwn(w http.ResponseWriter, c *call) {
	s.create(w, c, c.caller)
}

// createFor is POST /{user}/tickets. The user is "self" or the caller by
// login or id: creating a ticket for someone else needs a broker's or an
// administrator's permission, which the fake's users lack (403
// permissionDenied); a user that does not exist is a 404 NotFoundError of
// entity type "user".
func (s *Server) createFor(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	owner := s.lookupUser(c.user, c.caller)
	s.mu.Unlock()
	switch {
	case owner == nil:
		writeError(w, errNotFound("user", c.user))
	case owner != c.caller:
		writeError(w, errPermissionDenied("Cannot create tickets for another user"))
	default:
		s.create(w, c, owner)
	}
}

// create answers 201 with the ticket's address in Location and, from 4.13
// on, its TransactionView; 4.12 answers with a Transaction, which has the
// ticket number but no ticket status, dates or URLs.
func (s *Server) create(w http.ResponseWriter, c *call, owner *user) {
	var in ticketNew
	if err := json.Unmarshal(c.body, &in); err != nil {
		writeError(w, errDataConversion(""))
		return
	}
	s.mu.Lock()
	t, err := s.createTicket(owner, in)
	var out any
	if err == nil {
		if s.version == "4.12" {
			out = s.transaction(t)
		} else {
			out = s.view(t)
		}
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", s.URL+"/api/tickets/"+t.number)
	writeJSON(w, http.StatusCreated, out)
}

// viewTicket is GET /tickets/{ticket}. Any authenticated user may view a
// ticket: the payer has to see it before approving.
func (s *Server) viewTicket(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	t, err := s.find(c.ticket)
	var v transactionView
	if err == nil {
		v = s.view(t)
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// approveTicket is POST /tickets/{ticket}/approve by the payer, who
// confirms with their password in the confirmationPassword header. After
// the approval Cyclos calls the ticket's successWebhook.
func (s *Server) approveTicket(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	confirm := c.r.Header.Get("confirmationPassword")
	if subtle.ConstantTimeCompare([]byte(confirm), []byte(c.caller.password)) != 1 {
		s.mu.Unlock()
		writeError(w, errInvalidPassword())
		return
	}
	a, err := s.approve(c.ticket, c.caller)
	if err == nil && a.webhook != "" {
		s.startWebhook(c.ticket, a.webhook)
	}
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.result)
}

// processTicket is POST /tickets/{ticket}/process?orderId= by the receiver;
// Location is the payment's address.
func (s *Server) processTicket(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	res, err := s.process(c.ticket, c.caller, c.r.URL.Query().Get("orderId"))
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", s.URL+"/api/transactions/"+res.Transaction.ID)
	writeJSON(w, http.StatusOK, res)
}

// cancelTicket is POST /tickets/{ticket}/cancel by the receiver: 204, no
// body.
func (s *Server) cancelTicket(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	err := s.cancel(c.ticket, c.caller)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
