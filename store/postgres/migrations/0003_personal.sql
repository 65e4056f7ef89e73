-- Schema 3: retain_personal. personal_since is the order's PersonalSince
-- (since when it has been final with its customer's data still kept), set
-- until the data is erased, so that a retention pass reads the orders due
-- and not every order stored.
ALTER TABLE checkout_orders ADD COLUMN personal_since bigint;
CREATE INDEX checkout_orders_personal ON checkout_orders (site, personal_since, id) WHERE personal_since IS NOT NULL;
-- Orders written before: their last update, no earlier than their last
-- applied change, so that none is erased before its time.
UPDATE checkout_orders SET personal_since = updated_at WHERE deadline IS NULL;
