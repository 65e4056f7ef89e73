// Export: the whole file, read in one transaction, for copy-store.
package bolt

import (
	"context"
	"fmt"
	"sort"

	"go.etcd.io/bbolt"

	"github.com/caddy-checkout/checkout/store"
)

// Export gives sink everything the store holds, from one consistent
// snapshot: each order with its deliveries (in Seq order), then the
// provider data, the idempotency records and the spent tokens. A delivery
// whose order is missing is an error, not skipped: nothing is left behind
// silently.
func (s *Store) Export(ctx context.Context, sink store.Sink) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		byOrder := map[string][]store.Delivery{}
		err := tx.Bucket(bucketDeliveries).ForEach(func(id, raw []byte) error {
			d, err := decodeDelivery(id, raw)
			if err != nil {
				return err
			}
			k, err := deliveryOrderKey(d)
			if err != nil {
				return err
			}
			byOrder[string(k)] = append(byOrder[string(k)], *d)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketOrders).ForEach(func(k, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			o, err := decodeOrder(k, raw)
			if err != nil {
				return err
			}
			ds := byOrder[string(k)]
			delete(byOrder, string(k))
			sortBySeq(ds)
			return sink.Order(ctx, o, ds)
		})
		if err != nil {
			return err
		}
		for k, ds := range byOrder {
			return fmt.Errorf("delivery %s belongs to order %s, which is missing", ds[0].ID, keyName([]byte(k)))
		}
		err = tx.Bucket(bucketProviderData).ForEach(func(k, v []byte) error {
			return sink.Data(ctx, string(k), clone(v))
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketIdempotency).ForEach(func(k, raw []byte) error {
			rec, err := decodeIdempotent(string(k), raw)
			if err != nil {
				return err
			}
			return sink.Idempotent(ctx, string(k), *rec)
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketSpent).ForEach(func(k, v []byte) error {
			if len(v) != timeLen {
				return fmt.Errorf("spent token row %x: malformed", k)
			}
			return sink.Spent(ctx, string(k), decodeTime(v))
		})
	})
}

func sortBySeq(ds []store.Delivery) {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Queue != ds[j].Queue {
			return ds[i].Queue < ds[j].Queue
		}
		return ds[i].Seq < ds[j].Seq
	})
}
