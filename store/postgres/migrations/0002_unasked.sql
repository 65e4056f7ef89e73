-- Schema 2: the reconciler's queue. unasked is the order's Unasked time
-- (since when no one has asked a provider about its waiting attempts), set
-- while the order is open with an attempt waiting, so that a reconcile
-- pass reads the orders due for a question and not every open order.
ALTER TABLE checkout_orders ADD COLUMN unasked bigint;
CREATE INDEX checkout_orders_unasked ON checkout_orders (site, unasked, id) WHERE unasked IS NOT NULL;
-- Orders written by schema 1 are asked at the next pass, which then files
-- each by its real time (or leaves it out when nothing waits).
UPDATE checkout_orders SET unasked = 0 WHERE deadline IS NOT NULL;
