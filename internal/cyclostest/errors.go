// The errors the fake answers, each with the status and JSON shape Cyclos
// uses for it. The spec (components.schemas, the *Error and *ErrorCode
// schemas) fixes one JSON shape per status: 401 UnauthorizedError, 403
// ForbiddenError, 404 NotFoundError, 422 InputError and 500 Error or, with
// kind "payment", PaymentError. Where the spec does not say which error a
// situation gets, the choice and its reason are written next to it.
//
// No error body echoes a credential: not the access client token, not the
// login or password of a Basic header, not a confirmation password.
package cyclostest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an error response: status and JSON body for the API, and a
// sentence for the customer pages and Go callers.
type apiError struct {
	status int
	body   any
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("cyclostest: %d: %s", e.status, e.msg)
}

// writeJSON answers with a JSON body, as Cyclos does (UTF-8 JSON).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, e.body)
}

// codeBody is the body of the 401 and 403 errors: UnauthorizedError and
// ForbiddenError carry a code from their *ErrorCode enums.
type codeBody struct {
	Code string `json:"code"`
}

// errMissingAuthorization: no credentials at all. UnauthorizedErrorCode
// missingAuthorization: "Attempt to access an operation as guest, but the
// operation requires authentication" (every ticket operation requires one of
// the global security schemes).
func errMissingAuthorization() *apiError {
	return &apiError{http.StatusUnauthorized, codeBody{"missingAuthorization"}, "the request has no credentials"}
}

// errLogin: a Basic header with an unknown login or a wrong password.
// UnauthorizedErrorCode login: "Either user identification (principal) or
// password are invalid".
func errLogin() *apiError {
	return &apiError{http.StatusUnauthorized, codeBody{"login"}, "invalid user or password"}
}

// errInvalidAccessClient: an Access-Client-Token that is not the shop's.
// The enum has a code for exactly this, invalidAccessClient: "The access
// client used for access is invalid", so a wrong token is not reported as
// login.
func errInvalidAccessClient() *apiError {
	return &apiError{http.StatusUnauthorized, codeBody{"invalidAccessClient"}, "invalid access client token"}
}

// errInvalidAccessToken: an Authorization: Bearer token. The fake has no
// OAuth clients, so every such token is invalid (UnauthorizedErrorCode
// invalidAccessToken).
func errInvalidAccessToken() *apiError {
	return &apiError{http.StatusUnauthorized, codeBody{"invalidAccessToken"}, "invalid access token"}
}

// errLoggedOut: a Session-Token header. The fake opens no sessions, so
// every session token is one Cyclos no longer knows (UnauthorizedErrorCode
// loggedOut: "The session token used for access is invalid").
func errLoggedOut() *apiError {
	return &apiError{http.StatusUnauthorized, codeBody{"loggedOut"}, "invalid session token"}
}

// errInaccessibleChannel: with [WithChannel], a request without that
// Channel header lands on a channel the shop may not use. The credentials
// are valid, so this is not a 401: ForbiddenErrorCode inaccessibleChannel,
// "This channel cannot be accessed by the user".
func errInaccessibleChannel() *apiError {
	return &apiError{http.StatusForbidden, codeBody{"inaccessibleChannel"}, "this channel cannot be accessed by the user"}
}

// errPermissionDenied: the caller is not the user the operation belongs to:
// creating a ticket for another user, processing or canceling another
// user's ticket, approving a ticket whose fixed payer is someone else.
// ForbiddenErrorCode permissionDenied.
func errPermissionDenied(msg string) *apiError {
	return &apiError{http.StatusForbidden, codeBody{"permissionDenied"}, msg}
}

// errIllegalAction: the ticket is not in a status that allows the
// operation (approving a ticket that is not open, processing one that was
// not approved, canceling one that is not open), or the shop approves its
// own ticket. The spec's approve and process list only 200 and 500 (a
// PaymentError, which is about money, not status); the operations refuse a
// status with ForbiddenErrorCode illegalAction, "Attempt to perform an
// action that is not allowed on this context", which is what a wrong status
// is.
func errIllegalAction(msg string) *apiError {
	return &apiError{http.StatusForbidden, codeBody{"illegalAction"}, msg}
}

// passwordTypeRef is ForbiddenError.passwordType: the confirmation
// password of the fake is the login password.
type passwordTypeRef struct {
	ID           string `json:"id"`
	InternalName string `json:"internalName"`
	Name         string `json:"name"`
}

// errInvalidPassword: approve without a confirmationPassword header, or with
// a wrong one. ForbiddenErrorCode invalidPassword: "The password being used
// is invalid (normally the confirmation password)", with the passwordType
// the spec sends for that code.
func errInvalidPassword() *apiError {
	body := struct {
		Code         string          `json:"code"`
		PasswordType passwordTypeRef `json:"passwordType"`
	}{"invalidPassword", passwordTypeRef{"1", "login", "Login password"}}
	return &apiError{http.StatusForbidden, body, "the confirmation password is invalid"}
}

// notFoundBody is NotFoundError: the entity type and the key used to look it
// up, both omitted for a path the API does not serve.
type notFoundBody struct {
	EntityType string `json:"entityType,omitempty"`
	Key        string `json:"key,omitempty"`
}

// errNotFound: an unknown ticket number or user in the path.
func errNotFound(entityType, key string) *apiError {
	return &apiError{http.StatusNotFound, notFoundBody{entityType, key}, entityType + " not found"}
}

// errUnknownPath: a method and path the API does not serve, including POST
// /api/{user}/tickets on 4.12, which only has POST /api/tickets. The answer
// is a NotFoundError naming no entity; Cyclos's own UI reads such a 404 as
// "the requested location was not found".
func errUnknownPath() *apiError {
	return &apiError{http.StatusNotFound, notFoundBody{}, "location not found"}
}

// inputError is InputError with code "validation": errors keyed by
// property name, with the order the properties were checked in
// (properties), as the spec describes. Unknown custom values are reported
// under the customValues property rather than in customFieldErrors, which
// the spec keys by the internal name of an existing custom field.
type inputError struct {
	Code           string              `json:"code"`
	Properties     []string            `json:"properties,omitempty"`
	PropertyErrors map[string][]string `json:"propertyErrors,omitempty"`
}

func (e *inputError) property(name, msg string) {
	if e.PropertyErrors == nil {
		e.PropertyErrors = map[string][]string{}
	}
	if _, seen := e.PropertyErrors[name]; !seen {
		e.Properties = append(e.Properties, name)
	}
	e.PropertyErrors[name] = append(e.PropertyErrors[name], msg)
}

// err is the 422 for the collected errors, or nil if there are none.
func (e *inputError) err() *apiError {
	if len(e.Properties) == 0 {
		return nil
	}
	e.Code = "validation"
	first := e.Properties[0]
	return &apiError{http.StatusUnprocessableEntity, e, first + ": " + e.PropertyErrors[first][0]}
}

// errValidation is a 422 for one property.
func errValidation(property, msg string) *apiError {
	var e inputError
	e.property(property, msg)
	return e.err()
}

// errDataConversion: a body that is not JSON of the expected types.
// InputErrorCode dataConversion: "Some data conversion has failed".
func errDataConversion(value string) *apiError {
	body := struct {
		Code  string `json:"code"`
		Value string `json:"value,omitempty"`
	}{"dataConversion", value}
	return &apiError{http.StatusUnprocessableEntity, body, "the request body could not be read"}
}

// errInsufficientBalance: the payer cannot cover the ticket, at approval or
// at processing. Both operations document their 500 as PaymentError: the
// Error fields (exceptionType is required; its value is only for logs, so
// the fake's is illustrative), kind "payment" (ErrorKind), code
// insufficientBalance (PaymentErrorCode), and voucher, which the spec sends
// with that code.
func errInsufficientBalance() *apiError {
	const msg = "The account does not have enough balance for this payment"
	body := struct {
		ExceptionType    string `json:"exceptionType"`
		ExceptionMessage string `json:"exceptionMessage"`
		Kind             string `json:"kind"`
		Code             string `json:"code"`
		Voucher          bool   `json:"voucher"`
	}{"InsufficientBalanceException", msg, "payment", "insufficientBalance", false}
	return &apiError{http.StatusInternalServerError, body, msg}
}

// errUnexpected is what [Server.FailNext] answers: the spec's Error with
// kind general, "An unexpected error has occurred". A status that is not an
// error status becomes 500.
func errUnexpected(status int) *apiError {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	const msg = "An unexpected error has occurred"
	body := struct {
		ExceptionType    string `json:"exceptionType"`
		ExceptionMessage string `json:"exceptionMessage"`
		Kind             string `json:"kind"`
	}{"UnexpectedException", msg, "general"}
	return &apiError{status, body, msg}
}

// errOrderMismatch: process with an orderId that is not the one given at
// creation (or with one when none was given, or without one when one was).
// The spec makes the match a precondition of processing ("the orderId (if
// any) matches the one given at ticket creation") and the orderId is the
// caller's input, so the fake reports it as a validation error of the
// orderId parameter: 422 InputError, propertyErrors.orderId. Nothing is
// paid.
func errOrderMismatch() *apiError {
	return errValidation("orderId", "The order identifier does not match the ticket")
}
