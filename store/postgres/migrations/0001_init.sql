-- Schema 1 of the caddy-checkout store. Keys are compared byte by byte
-- (COLLATE "C"), as the embedded bbolt store orders them; times are
-- nanoseconds since the Unix epoch (bigint), clamped at the ends of
-- int64, so that every time the store is given reads back exactly.

CREATE TABLE checkout_orders (
	site       text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	doc        bytea  NOT NULL,           -- the order as JSON, exactly as written
	status     text   NOT NULL,
	deadline   bigint,                    -- set while the order is open
	updated_at bigint NOT NULL,
	last_seq   bigint NOT NULL DEFAULT 0, -- highest Seq given to a delivery of the order
	PRIMARY KEY (site, id)
);
CREATE INDEX checkout_orders_open ON checkout_orders (site, deadline, id) WHERE deadline IS NOT NULL;
CREATE INDEX checkout_orders_updated ON checkout_orders (updated_at DESC, site DESC, id DESC);

-- Attempt references (kind 'a') and providers' references (kind 'p') of
-- orders: both unique per kind.
CREATE TABLE checkout_refs (
	kind "char" NOT NULL,
	ref  bytea NOT NULL, -- providers' ids are taken as they come, any bytes
	site text COLLATE "C" NOT NULL,
	id   text COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, ref)
);
CREATE INDEX checkout_refs_order ON checkout_refs (site, id);

CREATE TABLE checkout_deliveries (
	id            text COLLATE "C" PRIMARY KEY,
	site          text COLLATE "C" NOT NULL,
	order_id      text COLLATE "C" NOT NULL,
	queue         text COLLATE "C" NOT NULL,
	seq           bigint NOT NULL,
	state         text   NOT NULL,
	next_at       bigint NOT NULL,
	created_at    bigint NOT NULL,
	doc           bytea  NOT NULL,
	-- The instance trying the delivery, until when (the database's clock).
	claimed_by    text,
	claimed_until timestamptz
);
CREATE UNIQUE INDEX checkout_deliveries_line ON checkout_deliveries (site, order_id, queue, seq) WHERE state = 'pending';
CREATE INDEX checkout_deliveries_due ON checkout_deliveries (next_at, id) WHERE state = 'pending';
CREATE INDEX checkout_deliveries_created ON checkout_deliveries (created_at DESC, id DESC);
CREATE INDEX checkout_deliveries_order ON checkout_deliveries (site, order_id, created_at DESC, id DESC);

CREATE TABLE checkout_idempotency (
	key bytea PRIMARY KEY,
	doc bytea NOT NULL
);

CREATE TABLE checkout_spent (
	key   bytea PRIMARY KEY,
	until bigint NOT NULL
);
CREATE INDEX checkout_spent_until ON checkout_spent (until);

CREATE TABLE checkout_data (
	key bytea PRIMARY KEY,
	val bytea NOT NULL
);

-- Background work that must run in one place at a time.
CREATE TABLE checkout_leases (
	name   text COLLATE "C" PRIMARY KEY,
	holder text NOT NULL,
	until  timestamptz NOT NULL
);
