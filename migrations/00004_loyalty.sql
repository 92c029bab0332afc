-- +goose Up
-- Loyalty (internal/loyalty). Points live in lots; the ledger (loyalty_entries) is append-only
-- and every change of a lot is also written as a move, so that for each lot
-- remaining = sum of its moves, and for each account the sum of entries = the sum of remainders.

-- The program settings: one row, created with the defaults documented in internal/loyalty.
CREATE TABLE loyalty_program (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    earn_rate    integer NOT NULL DEFAULT 1   CHECK (earn_rate BETWEEN 0 AND 10000),
    point_value  integer NOT NULL DEFAULT 1   CHECK (point_value BETWEEN 0 AND 1000000),
    expiry_days  integer NOT NULL DEFAULT 365 CHECK (expiry_days BETWEEN 0 AND 3650),
    pending_days integer NOT NULL DEFAULT 0   CHECK (pending_days BETWEEN 0 AND 365),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO loyalty_program DEFAULT VALUES;

-- One row per shopper, made on first use. Its only job is to be the row every writer of the
-- shopper's points locks (SELECT ... FOR UPDATE), so that writes to one account are serial.
CREATE TABLE loyalty_accounts (
    shopper_id text PRIMARY KEY,
    created_at timestamptz NOT NULL
);

-- The ledger. points is signed: earn > 0, redeem < 0, expire < 0, reverse either way.
-- shortfall is the part of a reversal that could not move the balance: for an earn, points of
-- the lot already spent or expired; for a redeem, points that paid off the lot's debt (the
-- shortfall of an earlier reversal of that lot's earn) instead of returning to the balance.
-- The amount a reversal undid is |points| + shortfall, and a transaction's reversals never
-- undo more than its |points|.
CREATE TABLE loyalty_entries (
    id         bigserial PRIMARY KEY,
    shopper_id text NOT NULL REFERENCES loyalty_accounts,
    kind       text NOT NULL CHECK (kind IN ('earn', 'redeem', 'reverse', 'expire')),
    points     bigint NOT NULL,
    shortfall  bigint NOT NULL DEFAULT 0 CHECK (shortfall >= 0),
    reverses   bigint REFERENCES loyalty_entries,
    -- api: a checkout/admin request; order: credited from order events; job: the expiry job.
    source     text NOT NULL CHECK (source IN ('api', 'order', 'job')),
    reason     text NOT NULL DEFAULT '',
    order_id   text,
    -- The experiment and variant whose loyalty_points strategy paid the points (offer_cost).
    experiment text,
    variant    text,
    created_at timestamptz NOT NULL,
    CHECK (CASE kind
        WHEN 'earn' THEN points > 0 AND reverses IS NULL
        WHEN 'redeem' THEN points < 0 AND reverses IS NULL
        WHEN 'expire' THEN points < 0 AND reverses IS NULL
        ELSE reverses IS NOT NULL END),
    CHECK ((experiment IS NULL) = (variant IS NULL))
);
CREATE INDEX loyalty_entries_shopper ON loyalty_entries (shopper_id, id);
CREATE INDEX loyalty_entries_reverses ON loyalty_entries (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX loyalty_entries_order ON loyalty_entries (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX loyalty_entries_experiment ON loyalty_entries (experiment, variant) WHERE experiment IS NOT NULL;

-- Every earn makes a lot. A lot is spendable while available_at <= now < expires_at (NULL:
-- never expires); before available_at its points are pending. debt is the shortfall of
-- reversals of the lot's earn that a later reversal of a redeem may still pay off.
CREATE TABLE loyalty_lots (
    id           bigserial PRIMARY KEY,
    shopper_id   text NOT NULL REFERENCES loyalty_accounts,
    entry_id     bigint NOT NULL UNIQUE REFERENCES loyalty_entries,
    points       bigint NOT NULL CHECK (points > 0),
    remaining    bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    debt         bigint NOT NULL DEFAULT 0 CHECK (debt >= 0 AND debt <= points),
    earned_at    timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at   timestamptz,
    CHECK (expires_at IS NULL OR expires_at > available_at)
);
-- Not partial: the account read sums spent lots too (expired, lifetime figures).
CREATE INDEX loyalty_lots_shopper ON loyalty_lots (shopper_id, expires_at);
CREATE INDEX loyalty_lots_expiring ON loyalty_lots (expires_at) WHERE remaining > 0;

-- How each entry moved points into or out of each lot: a redeem's draws (negative), which a
-- reversal of the redeem puts back into the same lots (points to remaining, settled to debt).
CREATE TABLE loyalty_lot_moves (
    entry_id bigint NOT NULL REFERENCES loyalty_entries,
    lot_id   bigint NOT NULL REFERENCES loyalty_lots,
    points   bigint NOT NULL,
    settled  bigint NOT NULL DEFAULT 0 CHECK (settled >= 0),
    PRIMARY KEY (entry_id, lot_id),
    CHECK (points <> 0 OR settled > 0)
);
CREATE INDEX loyalty_lot_moves_lot ON loyalty_lot_moves (lot_id);

-- The first answer to each idempotency key of a shopper, replayed to a retry with the same
-- request (same hash) and refused for a different one.
CREATE TABLE loyalty_idempotency (
    shopper_id   text NOT NULL REFERENCES loyalty_accounts,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer NOT NULL,
    body         bytea NOT NULL,
    entry_id     bigint NOT NULL REFERENCES loyalty_entries,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (shopper_id, key)
);

-- Orders credited from events: one row per order id, so an order earns at most once. A refund
-- that arrives before its order leaves a row with credited_at NULL that the order then finds.
CREATE TABLE loyalty_orders (
    order_id    text PRIMARY KEY,
    shopper_id  text NOT NULL,
    currency    text NOT NULL,
    paid        bigint NOT NULL DEFAULT 0 CHECK (paid >= 0),
    refunded    bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    event_seq   bigint,
    credited_at timestamptz
);

-- How far the crediting has read the events outbox (events.seq).
CREATE TABLE loyalty_event_cursor (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL DEFAULT 0
);
INSERT INTO loyalty_event_cursor DEFAULT VALUES;

-- +goose Down
DROP TABLE loyalty_event_cursor;
DROP TABLE loyalty_orders;
DROP TABLE loyalty_idempotency;
DROP TABLE loyalty_lot_moves;
DROP TABLE loyalty_lots;
DROP TABLE loyalty_entries;
DROP TABLE loyalty_accounts;
DROP TABLE loyalty_program;
