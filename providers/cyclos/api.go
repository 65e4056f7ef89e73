// The Cyclos tickets API as this provider uses it (tag "Tickets" of the
// Cyclos 4 OpenAPI spec): create, view, process and cancel, with the
// authentication headers the spec defines and Cyclos's error bodies read
// into errors for the operator and messages for the customer.
package cyclos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/caddy-checkout/checkout/provider"
)

// Ticket statuses (TicketStatusEnum).
const (
	statusOpen      = "open"
	statusApproved  = "approved"
	statusProcessed = "processed"
	statusCanceled  = "canceled"
	statusExpired   = "expired"
)

// ticketNew is the TicketNew body.
type ticketNew struct {
	Amount         string            `json:"amount"`
	Description    string            `json:"description,omitempty"`
	Type           string            `json:"type,omitempty"`
	CustomValues   map[string]string `json:"customValues,omitempty"`
	Payer          string            `json:"payer,omitempty"`
	CancelURL      string            `json:"cancelUrl,omitempty"`
	SuccessURL     string            `json:"successUrl,omitempty"`
	SuccessWebhook string            `json:"successWebhook,omitempty"`
	OrderID        string            `json:"orderId,omitempty"`
	ExpiresAfter   *timeInterval     `json:"expiresAfter,omitempty"`
}

type timeInterval struct {
	Amount int64  `json:"amount"`
	Field  string `json:"field"`
}

// ticketView is the part of a TransactionView read here.
type ticketView struct {
	ID           string       `json:"id"`
	TicketNumber string       `json:"ticketNumber"`
	TicketStatus string       `json:"ticketStatus"`
	Amount       string       `json:"amount"`
	ApproveURL   string       `json:"approveUrl"`
	Transaction  *transaction `json:"transaction"`
}

// transaction is the part of a Transaction read here.
type transaction struct {
	ID                string `json:"id"`
	TransactionNumber string `json:"transactionNumber"`
	Amount            string `json:"amount"`
}

// processResult is TicketProcessResult.
type processResult struct {
	TicketNumber      string       `json:"ticketNumber"`
	ActuallyProcessed bool         `json:"actuallyProcessed"`
	Transaction       *transaction `json:"transaction"`
}

type client struct {
	api      string // <root>/api
	token    string
	username string
	password string
	channel  string
	http     *http.Client
	// oldCreate is set once the server turned out to lack POST
	// /{user}/tickets (Cyclos before 4.16): later tickets go straight to
	// the deprecated POST /tickets.
	oldCreate atomic.Bool
}

// create makes a ticket: POST /{user}/tickets, or POST /tickets on a
// server without that path.
func (c *client) create(ctx context.Context, user string, in ticketNew) (*ticketView, error) {
	var t ticketView
	if !c.oldCreate.Load() {
		err := c.do(ctx, http.MethodPost, "/"+url.PathEscape(user)+"/tickets", nil, in, &t, http.StatusCreated)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || !ae.noSuchPath() {
			return &t, err
		}
		c.oldCreate.Store(true)
	}
	err := c.do(ctx, http.MethodPost, "/tickets", nil, in, &t, http.StatusCreated)
	return &t, err
}

func (c *client) view(ctx context.Context, ticket string) (*ticketView, error) {
	var t ticketView
	err := c.do(ctx, http.MethodGet, "/tickets/"+url.PathEscape(ticket), nil, nil, &t, http.StatusOK)
	return &t, err
}

func (c *client) process(ctx context.Context, ticket, orderID string) (*processResult, error) {
	var res processResult
	err := c.do(ctx, http.MethodPost, "/tickets/"+url.PathEscape(ticket)+"/process", url.Values{"orderId": {orderID}}, nil, &res, http.StatusOK)
	return &res, err
}

func (c *client) cancel(ctx context.Context, ticket string) error {
	return c.do(ctx, http.MethodPost, "/tickets/"+url.PathEscape(ticket)+"/cancel", nil, nil, nil, http.StatusNoContent, http.StatusOK)
}

// maxAnswer caps what is read of an answer.
const maxAnswer = 1 << 20

// do makes one API call. Credentials travel only in headers, never in
// errors or logs.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body, out any, okStatus ...int) error {
	u := c.api + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Access-Client-Token", c.token)
	} else {
		req.SetBasicAuth(c.username, c.password)
	}
	if c.channel != "" {
		req.Header.Set("Channel", c.channel)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", provider.ErrUnavailable, method, path, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the answer: %v", provider.ErrUnavailable, method, path, err)
	}
	for _, s := range okStatus {
		if resp.StatusCode == s {
			if out == nil || len(data) == 0 {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%w: %s %s: Cyclos answered %d with unexpected JSON: %v", provider.ErrUnavailable, method, path, resp.StatusCode, err)
			}
			return nil
		}
	}
	ae := &apiError{Status: resp.StatusCode, Op: method + " " + path}
	_ = json.Unmarshal(data, ae) // a non-JSON error body leaves only the status
	return ae
}

// apiError is an error answer of the Cyclos API: Error, InputError,
// PaymentError, UnauthorizedError, NotFoundError and the like share
// these fields.
type apiError struct {
	Status            int                 `json:"-"`
	Op                string              `json:"-"`
	Code              string              `json:"code"`
	Kind              string              `json:"kind"`
	ExceptionType     string              `json:"exceptionType"`
	ExceptionMessage  string              `json:"exceptionMessage"`
	EntityType        string              `json:"entityType"`
	GeneralErrors     []string            `json:"generalErrors"`
	PropertyErrors    map[string][]string `json:"propertyErrors"`
	CustomFieldErrors map[string][]string `json:"customFieldErrors"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Cyclos %s answered %d", e.Op, e.Status)
	for _, s := range []string{e.Kind, e.Code, e.ExceptionType, e.EntityType} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	var details []string
	details = append(details, e.GeneralErrors...)
	for _, m := range []map[string][]string{e.PropertyErrors, e.CustomFieldErrors} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			details = append(details, k+": "+strings.Join(m[k], "; "))
		}
	}
	if e.ExceptionMessage != "" {
		details = append(details, e.ExceptionMessage)
	}
	if len(details) > 0 {
		b.WriteString(": " + strings.Join(details, "; "))
	}
	return b.String()
}

// Unwrap classifies the error for the core: Cyclos unreachable or
// failing is ErrUnavailable (ask again later).
func (e *apiError) Unwrap() error {
	if e.Status >= 500 && e.Kind != "payment" && e.Code == "" || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		return provider.ErrUnavailable
	}
	return nil
}

// noSuchPath reports a server without the route (Cyclos before 4.16 has
// no POST /{user}/tickets): 404 naming no entity, or 405.
func (e *apiError) noSuchPath() bool {
	return e.Status == http.StatusMethodNotAllowed || e.Status == http.StatusNotFound && e.EntityType == ""
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// paymentMessages are what a customer is told for PaymentError codes, in
// English and (paymentMessagesJA) Japanese.
var paymentMessages = map[string]string{
	"insufficientBalance":          "Your Cyclos account does not have enough balance for this payment.",
	"dailyAmountExceeded":          "This payment is above your account's daily limit.",
	"dailyPaymentsExceeded":        "Your account has reached its number of payments for today.",
	"weeklyAmountExceeded":         "This payment is above your account's weekly limit.",
	"weeklyPaymentsExceeded":       "Your account has reached its number of payments for this week.",
	"monthlyAmountExceeded":        "This payment is above your account's monthly limit.",
	"monthlyPaymentsExceeded":      "Your account has reached its number of payments for this month.",
	"yearlyAmountExceeded":         "This payment is above your account's yearly limit.",
	"paymentAmountExceeded":        "This payment is above the largest amount your account may pay.",
	"destinationUpperLimitReached": "The shop's account cannot receive this payment now.",
	"timeBetweenPaymentsNotMet":    "Please wait a little before making another payment.",
}

var paymentMessagesJA = map[string]string{
	"insufficientBalance":          "Cyclosアカウントの残高が不足しています。",
	"dailyAmountExceeded":          "このお支払いはアカウントの1日の上限額を超えています。",
	"dailyPaymentsExceeded":        "本日のお支払い回数の上限に達しています。",
	"weeklyAmountExceeded":         "このお支払いはアカウントの週の上限額を超えています。",
	"weeklyPaymentsExceeded":       "今週のお支払い回数の上限に達しています。",
	"monthlyAmountExceeded":        "このお支払いはアカウントの月の上限額を超えています。",
	"monthlyPaymentsExceeded":      "今月のお支払い回数の上限に達しています。",
	"yearlyAmountExceeded":         "このお支払いはアカウントの年間の上限額を超えています。",
	"paymentAmountExceeded":        "このお支払いはアカウントで支払える最大額を超えています。",
	"destinationUpperLimitReached": "ショップのアカウントは現在このお支払いを受け取れません。",
	"timeBetweenPaymentsNotMet":    "少し時間をおいてから次のお支払いをしてください。",
}

// UserMessage implements provider.UserError: what the customer's page
// says, enough to act on, nothing of the shop's configuration.
func (e *apiError) UserMessage(locale string) string {
	ja := locale == "ja"
	if m, ok := paymentMessages[e.Code]; ok {
		if ja {
			return paymentMessagesJA[e.Code] + "別のお支払い方法をお選びください。"
		}
		return m + " Please choose another way to pay."
	}
	switch {
	case e.Status == http.StatusUnprocessableEntity:
		if ja {
			return "Cyclosがこのお支払いの準備を受け付けませんでした。別のお支払い方法をお選びいただくか、ショップにお問い合わせください。"
		}
		return "Cyclos refused to set up this payment. Please choose another way to pay, or contact the shop."
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		if ja {
			return "ショップのCyclosアカウントをこのお支払いに使えませんでした。別のお支払い方法をお選びいただくか、ショップにお問い合わせください。"
		}
		return "The shop's Cyclos account could not be used for this payment. Please choose another way to pay, or contact the shop."
	}
	if ja {
		return "Cyclosは現在このお支払いを受け付けられません。しばらくしてからもう一度お試しいただくか、別のお支払い方法をお選びください。"
	}
	return "Cyclos could not take this payment now. Please try again in a moment or choose another way to pay."
}

var _ provider.UserError = (*apiError)(nil)
