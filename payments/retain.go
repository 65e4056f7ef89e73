// This file is retain_personal: erasing the customer's data of orders
// final for long enough, and of their stored callbacks and API replies.

package payments

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/caddy-checkout/checkout/order"
	"github.com/caddy-checkout/checkout/provider"
	"github.com/caddy-checkout/checkout/store"
)

// Retain erases the customer's data of up to limit orders that have been
// final for longer than Config.RetainPersonal (oldest first): the e-mail,
// the shop's metadata but the plugin's own keys, and the provider data
// the providers name as personal. Amounts, ids, states and the history
// stay. It returns how many orders it erased; with RetainPersonal 0 it
// does nothing.
func (s *Site) Retain(ctx context.Context, limit int) (int, error) {
	if s.cfg.RetainPersonal <= 0 {
		return 0, nil
	}
	now := s.now()
	cutoff := now.Add(-s.cfg.RetainPersonal)
	due, err := s.cfg.Store.Personal(ctx, s.cfg.Site, cutoff, limit)
	if err != nil {
		return 0, err
	}
	personal := func(key string) (string, bool) {
		for _, p := range s.providers {
			if pp, ok := p.(provider.Personal); ok {
				if blank, yes := pp.Personal(key); yes {
					return blank, true
				}
			}
		}
		return "", false
	}
	var (
		n  atomic.Int64
		bg background
	)
	for _, o := range due {
		bg.Go(func() error {
			// The callbacks and the server API's records of the order
			// first: should that fail, the order is still due and the
			// next pass does all.
			if err := s.eraseCallbacks(ctx, o); err != nil {
				return err
			}
			for _, k := range o.IdempotencyKeys {
				if err := s.cfg.Store.ForgetIdempotent(ctx, store.IdempotencyKey(o.Site, k)); err != nil {
					return err
				}
			}
			erased := false
			_, err := s.cfg.Store.Update(ctx, o.Key, func(o *order.Order) (*order.Order, []store.Delivery, error) {
				erased = false
				if o == nil {
					return nil, nil, nil
				}
				if t := o.PersonalSince(); t.IsZero() || !t.Before(cutoff) {
					return nil, nil, nil // changed meanwhile
				}
				var keep func(string) bool
				if s.cfg.KeepMetadata != nil {
					keep = func(k string) bool { return s.cfg.KeepMetadata(o, k) }
				}
				o.ErasePersonal(keep, personal, now)
				erased = true
				return o, nil, nil
			})
			if err == nil && erased {
				n.Add(1)
			}
			return err
		})
	}
	err = bg.Wait()
	if n.Load() > 0 {
		s.log.Info("customer data erased (retain_personal)", zap.String("site", s.cfg.Site), zap.Int64("orders", n.Load()))
	}
	return int(n.Load()), err
}

// eraseCallbacks erases the shop's metadata (but the keys the site keeps)
// from the stored bodies of an order's callbacks that were sent or given
// up, and the shop's data from its 0xBTCpay postbacks: the outbox keeps
// them for the operator, and they may hold the customer's data. A
// callback still to be sent keeps its body.
func (s *Site) eraseCallbacks(ctx context.Context, o *order.Order) error {
	ds, err := s.cfg.Store.Deliveries(ctx, store.DeliveryFilter{Site: o.Site, OrderID: o.ID})
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.State == store.DeliveryPending {
			continue
		}
		body, changed := s.erasedBody(o, d.Body)
		if !changed {
			continue
		}
		was := *d
		d.Body = body
		// Over the version read: an operator's retry meanwhile stands.
		if sw, ok := s.cfg.Store.(store.DeliverySwapper); ok {
			err = sw.SaveDeliveryIf(ctx, d, &was)
		} else {
			err = s.cfg.Store.SaveDelivery(ctx, d)
		}
		if err != nil && !errors.Is(err, store.ErrStale) {
			return err
		}
	}
	return nil
}

// erasedBody is a stored callback's body without the customer's data,
// and whether that changed it: a callback's metadata but the keys the
// site keeps, or a 0xBTCpay postback's data (the shop's, as JSON text).
func (s *Site) erasedBody(o *order.Order, raw []byte) ([]byte, bool) {
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) != nil {
		return nil, false
	}
	var text string
	if json.Unmarshal(body["data"], &text) == nil {
		if text == "null" {
			return nil, false
		}
		body["data"] = json.RawMessage(`"null"`)
	} else {
		var data map[string]json.RawMessage
		var meta map[string]string
		if json.Unmarshal(body["data"], &data) != nil || json.Unmarshal(data["metadata"], &meta) != nil {
			return nil, false
		}
		kept := map[string]string{}
		for k, v := range meta {
			if s.cfg.KeepMetadata != nil && s.cfg.KeepMetadata(o, k) {
				kept[k] = v
			}
		}
		if len(kept) == len(meta) {
			return nil, false
		}
		data["metadata"], _ = json.Marshal(kept)
		body["data"], _ = json.Marshal(data)
	}
	out, err := json.Marshal(body)
	return out, err == nil
}
