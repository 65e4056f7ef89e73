// Bucket names for tests that damage rows on purpose, so the black-box
// tests need not hard-code the file layout.
package bolt

var (
	BucketOrders      = bucketOrders
	BucketDeliveries  = bucketDeliveries
	BucketIdempotency = bucketIdempotency
)
