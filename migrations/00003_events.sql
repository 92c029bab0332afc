-- +goose Up
-- Outcome events reported by checkout (internal/events). Written only by the events group
-- committer; read by analysis (by shopper and time) and by loyalty (by seq, as an outbox).

-- Idempotency by the client's event id. A unique index on the partitioned events table would
-- have to include occurred_at, which would let the same id in two months be stored twice, so the
-- ids live in this small unpartitioned table: the committer, holding the commit advisory lock,
-- looks the ids up and stores only the events whose id is new, with their ids, in the same
-- transaction (first write wins). occurred_at says which partition holds the event.
CREATE TABLE event_ids (
    id          text PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Partitioned by month of occurred_at (UTC). The server creates monthly partitions ahead of
-- time (events_yYYYYmMM, at start-up and then twice a day); the DEFAULT partition catches what
-- falls outside them (old back-filled events) so that no event is ever refused for want of a
-- partition.
--
-- seq is the outbox cursor for consumers such as loyalty: it only grows, and because every
-- committing transaction first takes the advisory lock events.commit (see internal/events),
-- rows become visible in seq order, so "seq > my cursor" never skips a row committed later
-- with a smaller seq.
CREATE TABLE events (
    seq         bigserial NOT NULL,
    id          text NOT NULL,
    type        text NOT NULL CHECK (type IN ('offer_viewed', 'offer_accepted', 'order_completed', 'order_refunded')),
    shopper_id  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    experiment  text,
    order_id    text,
    -- Money in integer minor units of currency; refund amount = what was returned.
    amount      bigint CHECK (amount >= 0),
    discount    bigint CHECK (discount >= 0),
    currency    char(3),
    CHECK ((amount IS NULL AND discount IS NULL) OR currency IS NOT NULL),
    CHECK (type NOT IN ('order_completed', 'order_refunded') OR (order_id IS NOT NULL AND amount IS NOT NULL)),
    PRIMARY KEY (seq, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX events_shopper_time ON events (shopper_id, occurred_at);
CREATE INDEX events_order ON events (order_id) WHERE order_id IS NOT NULL;
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The lines of order_completed events, so that analysis can find which SKUs an order held
-- (cross_sell_rate) and loyalty whether it held a strategy's products. Partitioned like events
-- and created with the same months.
CREATE TABLE order_items (
    event_id    text NOT NULL,
    line        integer NOT NULL CHECK (line >= 0),
    occurred_at timestamptz NOT NULL,
    order_id    text NOT NULL,
    shopper_id  text NOT NULL,
    sku         text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity >= 1),
    unit_price  bigint NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (event_id, line, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX order_items_shopper_time ON order_items (shopper_id, occurred_at);
CREATE TABLE order_items_default PARTITION OF order_items DEFAULT;

-- +goose Down
DROP TABLE order_items;
DROP TABLE events;
DROP TABLE event_ids;
