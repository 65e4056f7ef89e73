package caddymodule

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/order"
)

// FuzzCursor: the admin API's ?cursor= is the operator's (or anyone's
// with admin access) text. parseCursor never panics; a cursor it takes
// names a place that the API would write as a cursor again, the same
// place; and every place the API writes (a valid site, a valid order
// id, any time) comes back as it was.
func FuzzCursor(f *testing.F) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC)
	for _, o := range []*order.Order{
		{Key: order.Key{Site: "shop", ID: "1001"}, UpdatedAt: at},
		{Key: order.Key{Site: "café", ID: "A-1/2?x"}, UpdatedAt: at.In(time.FixedZone("", -(9*3600 + 30*60)))},
	} {
		f.Add(cursorOf(o), o.Site, o.ID, o.UpdatedAt.UnixNano())
	}
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"u":"0001-01-01T00:00:00Z","s":"shop","i":"."}`)), "shop", "..", int64(0))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"u":"9999-12-31T23:59:59+23:59","s":"a","i":"b"}`)), "\xff", "b", int64(-1))
	f.Add("e30", "", "", int64(1)) // {}
	f.Add("!!", "a b", "c d", int64(1<<62))
	f.Fuzz(func(t *testing.T, cursor, site, id string, nanos int64) {
		if after, err := parseCursor(cursor); err == nil {
			again := cursorOf(after)
			back, err := parseCursor(again)
			if err != nil || back.Site != after.Site || back.ID != after.ID || !back.UpdatedAt.Equal(after.UpdatedAt) {
				t.Fatalf("cursor %q names %s/%s at %s, which the API writes as %q, read back as %+v, %v",
					cursor, after.Site, after.ID, after.UpdatedAt, again, back, err)
			}
		}
		if checkSiteName(site) != nil || order.ValidID(id) != nil {
			return
		}
		o := &order.Order{Key: order.Key{Site: site, ID: id}, UpdatedAt: time.Unix(0, nanos)}
		back, err := parseCursor(cursorOf(o))
		if err != nil || back.Site != site || back.ID != id || !back.UpdatedAt.Equal(o.UpdatedAt) {
			t.Fatalf("the cursor of %q/%q at %s read back as %+v, %v", site, id, o.UpdatedAt, back, err)
		}
	})
}
