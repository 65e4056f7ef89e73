// A small typed client for the KOMOJU calls the provider makes. KOMOJU has
// no official Go client, so this is our own: net/http and JSON, HTTP Basic
// with the secret key as the user and an empty password, an idempotency key
// on every POST, and KOMOJU's error JSON read into apiError.
package komoju

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-checkout/checkout/provider"
)

// client talks to KOMOJU's API at base ("https://komoju.com").
type client struct {
	base string
	key  string
	http *http.Client
}

// sessionRequest is the body of POST /api/v1/sessions (komoju-node-sdk
// CreateSessionRequestWithPaymentMode).
type sessionRequest struct {
	Mode             string            `json:"mode"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	ReturnURL        string            `json:"return_url"`
	DefaultLocale    string            `json:"default_locale,omitempty"`
	Email            string            `json:"email,omitempty"`
	PaymentTypes     []string          `json:"payment_types,omitempty"`
	ExpiresInSeconds int64             `json:"expires_in_seconds"`
	PaymentData      paymentData       `json:"payment_data"`
	Metadata         map[string]string `json:"metadata"`
}

type paymentData struct {
	ExternalOrderNum string `json:"external_order_num"`
}

// session is the part of a Session object read here.
type session struct {
	ID          string            `json:"id"`
	Resource    string            `json:"resource"`
	Status      string            `json:"status"` // pending, completed, cancelled
	Expired     bool              `json:"expired"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	SessionURL  string            `json:"session_url"`
	Metadata    map[string]string `json:"metadata"`
	Payment     *payment          `json:"payment"`
	PaymentData struct {
		ExternalOrderNum string `json:"external_order_num"`
	} `json:"payment_data"`
}

// payment is the part of a Payment object read here.
type payment struct {
	ID               string         `json:"id"`
	Resource         string         `json:"resource"`
	Status           string         `json:"status"`
	Amount           *int64         `json:"amount"`
	Currency         string         `json:"currency"`
	PaymentDeadline  *time.Time     `json:"payment_deadline"`
	PaymentDetails   paymentDetails `json:"payment_details"`
	ExternalOrderNum string         `json:"external_order_num"`
	Session          string         `json:"session"`
	AmountRefunded   int64          `json:"amount_refunded"`
}

type paymentDetails struct {
	Type             string `json:"type"`
	Store            string `json:"store"`
	ConfirmationCode string `json:"confirmation_code"`
	Receipt          string `json:"receipt"`
	InstructionsURL  string `json:"instructions_url"`
}

// apiError is KOMOJU's {"error":{"code","message","param"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("KOMOJU answered %d %s: %s", e.Status, e.Code, e.Message)
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	return s
}

// UserMessage implements provider.UserError: KOMOJU refused the payment
// as asked (an amount or method it does not take), so the customer is
// told to choose another way rather than to try again.
func (e *apiError) UserMessage(locale string) string {
	if locale == "ja" {
		return "KOMOJUでこのお支払いを受け付けられませんでした。別のお支払い方法を選ぶか、繰り返し起きる場合はショップにお問い合わせください。"
	}
	return "KOMOJU could not accept this payment. Please choose another way to pay, or contact the shop if this happens again."
}

// errMissing is KOMOJU's 404: no such object for this account.
var errMissing = errors.New("no such KOMOJU object")

// do sends a request and decodes a 2xx answer into out. Network trouble,
// timeouts, 409 (a concurrent retry of the same idempotency key), 429 and
// 5xx are provider.ErrUnavailable (ask again later); 404 is errMissing;
// any other refusal is an *apiError.
func (c *client) do(ctx context.Context, method, path, idemKey string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1"+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.key, "")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("X-KOMOJU-IDEMPOTENCY", idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL error holds no key: Basic credentials travel in a
		// header, never in the URL.
		return fmt.Errorf("%w: %s %s: %v", provider.ErrUnavailable, method, path, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the answer: %v", provider.ErrUnavailable, method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %s %s: KOMOJU's answer is not the JSON expected: %v", provider.ErrUnavailable, method, path, err)
		}
		return nil
	}
	var wrap struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &wrap) != nil || wrap.Error == nil {
		wrap.Error = &apiError{Code: "unknown", Message: http.StatusText(resp.StatusCode)}
	}
	e := wrap.Error
	e.Status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s %s", errMissing, method, path)
	case resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s %s: %v", provider.ErrUnavailable, method, path, e)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s %s: KOMOJU refused the secret key (%d %s): check secret_key", method, path, e.Status, e.Code)
	}
	return fmt.Errorf("%s %s: %w", method, path, e)
}

func (c *client) createSession(ctx context.Context, key string, r sessionRequest) (*session, error) {
	var s session
	if err := c.do(ctx, http.MethodPost, "/sessions", key, r, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *client) session(ctx context.Context, id string) (*session, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q is not a KOMOJU session id", provider.ErrMalformed, truncate(id, 40))
	}
	var s session
	if err := c.do(ctx, http.MethodGet, "/sessions/"+url.PathEscape(id), "", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *client) payment(ctx context.Context, id string) (*payment, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q is not a KOMOJU payment id", provider.ErrMalformed, truncate(id, 40))
	}
	var p payment
	if err := c.do(ctx, http.MethodGet, "/payments/"+url.PathEscape(id), "", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (c *client) cancelPayment(ctx context.Context, id, key string) (*payment, error) {
	var p payment
	if err := c.do(ctx, http.MethodPost, "/payments/"+url.PathEscape(id)+"/cancel", key, struct{}{}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (c *client) cancelSession(ctx context.Context, id, key string) (*session, error) {
	var s session
	if err := c.do(ctx, http.MethodPost, "/sessions/"+url.PathEscape(id)+"/cancel", key, struct{}{}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// refundRequest is POST /payments/{id}/refund's body: no amount refunds
// all that is left.
type refundRequest struct {
	Amount int64 `json:"amount,omitempty"`
}

func (c *client) refund(ctx context.Context, id, key string, amount int64) (*payment, error) {
	var p payment
	if err := c.do(ctx, http.MethodPost, "/payments/"+url.PathEscape(id)+"/refund", key, refundRequest{Amount: amount}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// validID is the form of KOMOJU's object ids (25 lowercase letters and
// digits in practice; up to 64 allowed here).
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
