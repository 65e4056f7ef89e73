// Package storetest is the conformance suite of store.Store: the behaviour
// every store must have, run against the embedded bbolt store and the
// PostgreSQL store alike (each package's TestConformance calls Run).
package storetest

import (
	"testing"

	"github.com/caddy-checkout/checkout/store"
)

// Factory opens the stores of the suite.
type Factory struct {
	// New opens a new, empty store for one test and closes it when the
	// test ends (closing it again must be harmless).
	New func(t testing.TB) store.Store
	// Reopen closes s and opens the same data again, as a restart does.
	Reopen func(t testing.TB, s store.Store) store.Store
	// Second, when not nil, opens another handle on the data of s while
	// s stays open, as a second Caddy instance sharing the store does
	// (PostgreSQL). A store one process holds alone (bbolt) has none, and
	// the tests of sharing are left out.
	Second func(t testing.TB, s store.Store) store.Store
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"UpdateCreatesAndReturnsStoredOrder", testUpdateCreatesAndReturnsStoredOrder},
		{"GetUnknownIsNotFound", testGetUnknownIsNotFound},
		{"UpdateErrorWritesNothing", testUpdateErrorWritesNothing},
		{"UpdateErrorDoesNotFailOthersInTheBatch", testUpdateErrorDoesNotFailOthersInTheBatch},
		{"UpdateNilOrderWritesNothing", testUpdateNilOrderWritesNothing},
		{"UpdateRefusesInconsistentResults", testUpdateRefusesInconsistentResults},
		{"ByRefFindsEveryAttempt", testByRefFindsEveryAttempt},
		{"OpenFollowsStatusAndExpiry", testOpenFollowsStatusAndExpiry},
		{"ListOrderAndFilters", testListOrderAndFilters},
		{"ConcurrentUpdatesOfOneKeyLoseNothing", testConcurrentUpdatesOfOneKeyLoseNothing},
		{"OpenFollowsTheHoldDeadline", testOpenFollowsTheHoldDeadline},
		{"ByProviderRef", testByProviderRef},
		{"DueReturnsOnlyDueQueueHeads", testDueReturnsOnlyDueQueueHeads},
		{"DeliveringTheHeadMakesTheNextOneHead", testDeliveringTheHeadMakesTheNextOneHead},
		{"ManualRetryRequeues", testManualRetryRequeues},
		{"NextDueIsTheEarliestPending", testNextDueIsTheEarliestPending},
		{"SaveDeliveryRefusals", testSaveDeliveryRefusals},
		{"DeliveriesGetSeqAndDefaults", testDeliveriesGetSeqAndDefaults},
		{"DeliveriesFiltersNewestFirst", testDeliveriesFiltersNewestFirst},
		{"LinesOfOneOrderDoNotWaitForEachOther", testLinesOfOneOrderDoNotWaitForEachOther},
		{"IdempotencyBeginFinishForget", testIdempotencyBeginFinishForget},
		{"IdempotencyStaleTakeover", testIdempotencyStaleTakeover},
		{"IdempotencyZeroCreatedAtUsesNow", testIdempotencyZeroCreatedAtUsesNow},
		{"ProviderDataSurvivesReopen", testProviderDataSurvivesReopen},
		{"NextSeqConcurrentNumbersAreUnique", testNextSeqConcurrentNumbersAreUnique},
		{"SpendTokenOnceAcrossReopen", testSpendTokenOnceAcrossReopen},
		{"SpentTokensAreForgottenAfterTheyExpire", testSpentTokensAreForgottenAfterTheyExpire},
		{"ReopenKeepsOrdersOutboxAndIndexes", testReopenKeepsOrdersOutboxAndIndexes},
		{"CancelledContext", testCancelledContext},
	}
	if f.Second != nil {
		tests = append(tests, []struct {
			name string
			fn   func(*testing.T, Factory)
		}{
			{"Shared/ConcurrentUpdatesLoseNothing", testSharedConcurrentUpdatesLoseNothing},
			{"Shared/ChangesAreSeenByTheOther", testSharedChangesAreSeenByTheOther},
			{"Shared/OneEventAppliedOnce", testSharedOneEventAppliedOnce},
			{"Shared/TokenSpentOnce", testSharedTokenSpentOnce},
			{"Shared/NextSeqUnique", testSharedNextSeqUnique},
			{"Shared/IdempotencyBegunOnce", testSharedIdempotencyBegunOnce},
			{"Shared/PutDataIfAbsentAgrees", testSharedPutDataIfAbsentAgrees},
			{"Shared/CreatedOnceByTwo", testSharedCreatedOnceByTwo},
		}...)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f)
		})
	}
}
