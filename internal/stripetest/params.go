// Decoding and checking Stripe's form parameters: bracket notation for hashes
// and arrays (line_items[0][price_data][unit_amount]=500, metadata[ref]=x,
// expand[0]=payment_intent), with Stripe's messages for what is wrong.
package stripetest

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// form is a decoded parameter hash. A value is a string, or a nested form for
// both hashes and arrays (an array's keys are its indexes).
type form map[string]any

// decodeForm turns flat bracketed keys into nested forms.
func decodeForm(vals url.Values) (form, *apiError) {
	root := form{}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		segs, ok := splitKey(k)
		if !ok {
			return nil, invalidRequest(k, "Invalid parameter name: "+k)
		}
		for _, v := range vals[k] {
			if err := insert(root, segs, v, k); err != nil {
				return nil, err
			}
		}
	}
	return root, nil
}

// splitKey splits "a[b][0]" into a, b, 0 and "a[]" into a, "".
func splitKey(k string) ([]string, bool) {
	name, rest, _ := strings.Cut(k, "[")
	if name == "" {
		return nil, false
	}
	segs := []string{name}
	if rest == "" && !strings.Contains(k, "[") {
		return segs, true
	}
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
	}
	return segs, true
}

func insert(f form, segs []string, v, full string) *apiError {
	for i, seg := range segs {
		last := i == len(segs)-1
		if seg == "" { // a[] appends
			if !last {
				return invalidRequest(full, "Invalid array: "+full)
			}
			seg = strconv.Itoa(len(f))
		}
		if last {
			if _, isForm := f[seg].(form); isForm {
				return invalidRequest(full, "Invalid hash: "+full+" is given both as a value and as a hash")
			}
			f[seg] = v
			return nil
		}
		switch next := f[seg].(type) {
		case form:
			f = next
		case nil:
			n := form{}
			f[seg] = n
			f = n
		default:
			return invalidRequest(full, "Invalid hash: "+full+" is given both as a value and as a hash")
		}
	}
	return nil
}

// spec describes the parameters an endpoint accepts, so an unknown one is
// refused as Stripe refuses it. A nil *spec is a scalar.
type spec struct {
	fields  map[string]*spec // a hash with these keys
	isList  bool             // an array of elem
	elem    *spec
	anyKeys bool // a hash of arbitrary string values (metadata)
}

var (
	scalar   *spec
	metadata = &spec{anyKeys: true}
)

func hash(fields map[string]*spec) *spec { return &spec{fields: fields} }
func array(elem *spec) *spec             { return &spec{isList: true, elem: elem} }

// check walks v against sp and reports the first parameter that is unknown or
// of the wrong shape, naming it as Stripe does (line_items[0][price]).
func check(v any, sp *spec, name string) *apiError {
	switch {
	case sp == nil:
		if _, isStr := v.(string); !isStr {
			return invalidRequest(name, "Invalid string: "+name+" must be a string, not a hash")
		}
	case sp.anyKeys:
		if s, isStr := v.(string); isStr && s == "" {
			return nil // metadata= unsets all keys
		}
		f, isForm := v.(form)
		if !isForm {
			return invalidRequest(name, "Invalid hash: "+name)
		}
		for _, k := range sortedKeys(f) {
			if _, isStr := f[k].(string); !isStr {
				return invalidRequest(name+"["+k+"]", "Invalid string: "+name+"["+k+"] must be a string")
			}
		}
	case sp.isList:
		if _, isStr := v.(string); isStr && sp.elem == scalar {
			return nil // expand=payment_intent is a one-element array
		}
		f, isForm := v.(form)
		if !isForm {
			return invalidRequest(name, "Invalid array: "+name)
		}
		for _, k := range sortedKeys(f) {
			if _, err := strconv.Atoi(k); err != nil {
				return invalidRequest(name, "Invalid array: "+name+" has the non-numeric index "+strconv.Quote(k))
			}
			if err := check(f[k], sp.elem, name+"["+k+"]"); err != nil {
				return err
			}
		}
	default:
		f, isForm := v.(form)
		if !isForm {
			return invalidRequest(name, "Invalid hash: "+name)
		}
		for _, k := range sortedKeys(f) {
			sub, known := sp.fields[k]
			full := k
			if name != "" {
				full = name + "[" + k + "]"
			}
			if !known {
				e := invalidRequest(full, "Received unknown parameter: "+full+" (not modelled by stripetest)")
				e.Code = "parameter_unknown"
				return e
			}
			if err := check(f[k], sub, full); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(f form) []string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, aErr := strconv.Atoi(keys[i])
		b, bErr := strconv.Atoi(keys[j])
		if aErr == nil && bErr == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}

// The accessors below assume check has passed, so shapes are as specified.

func (f form) str(k string) (string, bool) {
	s, ok := f[k].(string)
	return s, ok
}

func (f form) sub(k string) form {
	s, _ := f[k].(form)
	return s
}

// list returns an array's elements in index order.
func (f form) list(k string) []any {
	switch v := f[k].(type) {
	case string:
		return []any{v}
	case form:
		out := make([]any, 0, len(v))
		for _, i := range sortedKeys(v) {
			out = append(out, v[i])
		}
		return out
	}
	return nil
}

func (f form) strs(k string) []string {
	var out []string
	for _, v := range f.list(k) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// integer parses an integer parameter with Stripe's messages.
func (f form) integer(k, name string, min int64) (int64, bool, *apiError) {
	s, present := f.str(k)
	if !present {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		e := invalidRequest(name, "Invalid integer: "+s)
		e.Code = "parameter_invalid_integer"
		return 0, true, e
	}
	if n < min {
		return 0, true, invalidRequest(name, fmt.Sprintf("This value must be greater than or equal to %d.", min))
	}
	return n, true, nil
}

// checkMetadata applies Stripe's metadata limits: 50 keys, keys up to 40
// characters, values up to 500. An empty value means "no such key".
func checkMetadata(f form, name string) (map[string]string, *apiError) {
	out := map[string]string{}
	for _, k := range sortedKeys(f) {
		v, _ := f[k].(string)
		param := name + "[" + k + "]"
		if len(k) > 40 {
			return nil, invalidRequest(param, fmt.Sprintf("Metadata keys can have up to 40 characters, but you passed in a key that is %d characters: %q.", len(k), k))
		}
		if len([]rune(v)) > 500 {
			return nil, invalidRequest(param, fmt.Sprintf("Metadata values can have up to 500 characters, but you passed in a value that is %d characters. Invalid value: %s", len([]rune(v)), string([]rune(v)[:40])+"..."))
		}
		if v != "" {
			out[k] = v
		}
	}
	if len(out) > 50 {
		return nil, invalidRequest(name, fmt.Sprintf("You can have up to 50 metadata keys, but you passed in %d.", len(out)))
	}
	return out, nil
}

// oneOf checks an enumerated parameter with Stripe's message.
func oneOf(v, name string, allowed []string) *apiError {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	list := strings.Join(allowed[:len(allowed)-1], ", ") + ", or " + allowed[len(allowed)-1]
	return invalidRequest(name, fmt.Sprintf("Invalid %s: must be one of %s", name, list))
}
