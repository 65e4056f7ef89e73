// Package storetest is the conformance suite of store.Store: the behaviour
// every store must have, run against the embedded bbolt store and the
// PostgreSQL store alike (each package's TestConformance calls Run).
package storetest

import (
	"strings"
	"testing"

	"github.com/caddy-checkout/checkout/store"
)

// Factory opens the stores of the suite.
type Factory struct {
	// New opens a new, empty store for one test and registers its Close
	// with t.Cleanup. The suite may Close a store itself (Reopen does), so
	// closing it again must be harmless.
	New func(t testing.TB) store.Store
	// Reopen closes s and opens the same data again, as a restart does.
	// When nil, the tests of reopening are left out (and Run says so).
	Reopen func(t testing.TB, s store.Store) store.Store
	// Second, when not nil, opens another handle on the data of s while
	// s stays open, as a second Caddy instance sharing the store does
	// (PostgreSQL). A store one process holds alone (bbolt locks its file)
	// has none, and the tests of sharing are left out (and Run says so).
	Second func(t testing.TB, s store.Store) store.Store
}

// needs names what a conformance test needs of the Factory beyond New.
type needs int

const (
	needsNew needs = iota
	needsReopen
	needsSecond
)

type conformanceTest struct {
	name  string
	needs needs
	fn    func(*testing.T, Factory)
}

var conformanceTests = []conformanceTest{
	// Update and the order reads (orders.go).
	{"UpdateCreatesAndReturnsStoredOrder", needsNew, testUpdateCreatesAndReturnsStoredOrder},
	{"GetUnknownIsNotFound", needsNew, testGetUnknownIsNotFound},
	{"UpdateErrorWritesNothing", needsNew, testUpdateErrorWritesNothing},
	{"UpdateErrorDoesNotFailOthersInTheBatch", needsNew, testUpdateErrorDoesNotFailOthersInTheBatch},
	{"UpdateNilOrderWritesNothing", needsNew, testUpdateNilOrderWritesNothing},
	{"UpdateRefusesInconsistentResults", needsNew, testUpdateRefusesInconsistentResults},
	{"ByRefFindsEveryAttempt", needsNew, testByRefFindsEveryAttempt},
	{"OpenFollowsStatusAndExpiry", needsNew, testOpenFollowsStatusAndExpiry},
	{"UnaskedFollowsAttemptsAndChecks", needsNew, testUnaskedFollowsAttemptsAndChecks},
	{"PersonalFollowsFinalityAndErasure", needsNew, testPersonalFollowsFinalityAndErasure},
	{"ListOrderAndFilters", needsNew, testListOrderAndFilters},
	{"ListPages", needsNew, testListPages},
	{"ConcurrentUpdatesOfOneKeyLoseNothing", needsNew, testConcurrentUpdatesOfOneKeyLoseNothing},
	{"OpenFollowsTheHoldDeadline", needsNew, testOpenFollowsTheHoldDeadline},
	{"ByProviderRef", needsNew, testByProviderRef},

	// The outbox (outbox.go).
	{"DueReturnsOnlyDueQueueHeads", needsNew, testDueReturnsOnlyDueQueueHeads},
	{"DeliveringTheHeadMakesTheNextOneHead", needsNew, testDeliveringTheHeadMakesTheNextOneHead},
	{"ManualRetryRequeues", needsNew, testManualRetryRequeues},
	{"NextDueIsTheEarliestPending", needsNew, testNextDueIsTheEarliestPending},
	{"SaveDeliveryRefusals", needsNew, testSaveDeliveryRefusals},
	{"DeliveriesGetSeqAndDefaults", needsNew, testDeliveriesGetSeqAndDefaults},
	{"DeliveriesFiltersNewestFirst", needsNew, testDeliveriesFiltersNewestFirst},
	{"LinesOfOneOrderDoNotWaitForEachOther", needsNew, testLinesOfOneOrderDoNotWaitForEachOther},

	// Idempotency records, provider data, spent tokens.
	{"IdempotencyBeginFinishForget", needsNew, testIdempotencyBeginFinishForget},
	{"IdempotencyStaleTakeover", needsNew, testIdempotencyStaleTakeover},
	{"IdempotencyZeroCreatedAtUsesNow", needsNew, testIdempotencyZeroCreatedAtUsesNow},
	{"NextSeqConcurrentNumbersAreUnique", needsNew, testNextSeqConcurrentNumbersAreUnique},
	{"SpentTokensAreForgottenAfterTheyExpire", needsNew, testSpentTokensAreForgottenAfterTheyExpire},
	{"CancelledContext", needsNew, testCancelledContext},

	// Restarts.
	{"ReopenKeepsOrdersOutboxAndIndexes", needsReopen, testReopenKeepsOrdersOutboxAndIndexes},
	{"ProviderDataSurvivesReopen", needsReopen, testProviderDataSurvivesReopen},
	{"SpendTokenOnceAcrossReopen", needsReopen, testSpendTokenOnceAcrossReopen},

	// Two handles on one store (shared.go).
	{"Shared/ConcurrentUpdatesLoseNothing", needsSecond, testSharedConcurrentUpdatesLoseNothing},
	{"Shared/ChangesAreSeenByTheOther", needsSecond, testSharedChangesAreSeenByTheOther},
	{"Shared/OneEventAppliedOnce", needsSecond, testSharedOneEventAppliedOnce},
	{"Shared/TokenSpentOnce", needsSecond, testSharedTokenSpentOnce},
	{"Shared/NextSeqUnique", needsSecond, testSharedNextSeqUnique},
	{"Shared/IdempotencyBegunOnce", needsSecond, testSharedIdempotencyBegunOnce},
	{"Shared/PutDataIfAbsentAgrees", needsSecond, testSharedPutDataIfAbsentAgrees},
	{"Shared/CreatedOnceByTwo", needsSecond, testSharedCreatedOnceByTwo},
}

// Run runs every conformance test as a parallel subtest of t, each on
// stores of its own. Tests that need a Reopen or a Second the Factory
// lacks are left out, and named in t's log: they did not pass, and the
// run must not read as though they had.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("storetest.Factory.New is nil")
	}
	omitted := map[needs][]string{}
	for _, tc := range conformanceTests {
		if (tc.needs == needsReopen && f.Reopen == nil) || (tc.needs == needsSecond && f.Second == nil) {
			omitted[tc.needs] = append(omitted[tc.needs], tc.name)
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f)
		})
	}
	if names := omitted[needsReopen]; len(names) > 0 {
		t.Logf("Factory.Reopen is nil: left out %d tests of reopening: %s", len(names), strings.Join(names, ", "))
	}
	if names := omitted[needsSecond]; len(names) > 0 {
		t.Logf("Factory.Second is nil: left out %d tests of sharing: %s", len(names), strings.Join(names, ", "))
	}
}
