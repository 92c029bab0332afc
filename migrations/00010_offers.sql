-- +goose Up
-- Caps, budgets and the holdout of the offers (internal/offers; SPEC §2a, §2b; docs/offers.md).

-- The experiment's own cap and budget; variants carry theirs inside variants.
ALTER TABLE experiments ADD COLUMN frequency_cap jsonb, ADD COLUMN budget jsonb;

-- The program's offer settings: one row. The global cap counts a shopper's opportunities in
-- every experiment; the holdout keeps percent of shoppers (hashed with seed) from every offer.
-- holdout_generation grows with every change of percent or seed: each generation is an
-- analysis window of its own, as a phase is for an experiment.
CREATE TABLE offer_settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    global_cap         jsonb,
    holdout_percent    double precision NOT NULL DEFAULT 0 CHECK (holdout_percent >= 0 AND holdout_percent <= 100),
    holdout_seed       text NOT NULL DEFAULT '',
    holdout_generation integer NOT NULL DEFAULT 0,
    version            integer NOT NULL DEFAULT 1,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO offer_settings DEFAULT VALUES;

-- Every change of the settings, kept like experiment_audit.
CREATE TABLE offer_settings_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    action     text NOT NULL,
    actor_role text NOT NULL,
    actor_name text NOT NULL,
    version    integer NOT NULL,
    changes    jsonb NOT NULL DEFAULT '{}'
);

-- What each server has told the others, read by every server's counter through a cursor on
-- id: the opportunities it counted against frequency caps (kind 'opportunity', at = when),
-- and offers closed for a shopper by a per-shopper limit (kind 'closed', until = when the
-- limit frees up). Every writer takes the advisory lock offers.feed just before inserting and
-- commits right after, so rows become visible in id order and "id > cursor" misses none.
CREATE TABLE offer_feed (
    id          bigserial PRIMARY KEY,
    server      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('opportunity', 'closed')),
    shopper_id  text NOT NULL,
    experiments text[] NOT NULL,
    at          timestamptz NOT NULL,
    until       timestamptz,
    CHECK ((kind = 'closed') = (until IS NOT NULL))
);
CREATE INDEX offer_feed_at ON offer_feed (at);

-- What each budget has spent: one row per experiment, variant ('' for the experiment's own
-- budget), kind and currency ('' for points), kept whether or not a limit is set, so that a
-- budget set later counts what was spent before. spent grows by spends and shrinks by refunds;
-- every change happens under the row's lock in the transaction that records the spend
-- (offer_spends). exhausted_at: when the budget closed (what it had left paid for no offer of
-- its variants); a higher limit or money given back opens it again.
CREATE TABLE offer_budgets (
    experiment   text NOT NULL,
    variant      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('discount', 'points')),
    currency     text NOT NULL,
    spent        bigint NOT NULL DEFAULT 0 CHECK (spent >= 0),
    exhausted_at timestamptz,
    PRIMARY KEY (experiment, variant, kind, currency)
);

-- Every spend: an order's discount or a bonus credit, charged to the budgets of its experiment
-- and variant. over is the part no budget had room for (an order cannot be refused after the
-- fact); returned is what refunds gave back. One spend per (experiment, kind, ref): ref is the
-- order id, or the idempotency key of an API earn.
CREATE TABLE offer_spends (
    id          bigserial PRIMARY KEY,
    experiment  text NOT NULL,
    variant     text NOT NULL,
    shopper_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('discount', 'points')),
    ref         text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    text NOT NULL DEFAULT '',
    base        bigint NOT NULL DEFAULT 0 CHECK (base >= 0),
    refunded    bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    returned    bigint NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= amount),
    over        bigint NOT NULL DEFAULT 0 CHECK (over >= 0 AND over <= amount),
    at          timestamptz NOT NULL,
    UNIQUE (experiment, kind, ref)
);
CREATE INDEX offer_spends_shopper ON offer_spends (experiment, shopper_id, at);
CREATE INDEX offer_spends_ref ON offer_spends (ref);

-- One row per (experiment, shopper) with a per-shopper limit: the row their spends lock, so
-- that two concurrent spends of one shopper are counted one after the other.
CREATE TABLE offer_shopper_locks (
    experiment text NOT NULL,
    shopper_id text NOT NULL,
    PRIMARY KEY (experiment, shopper_id)
);

-- When each budget closed and opened again, for reports (the date a variant was constrained).
CREATE TABLE offer_budget_log (
    id         bigserial PRIMARY KEY,
    experiment text NOT NULL,
    variant    text NOT NULL,
    kind       text NOT NULL,
    event      text NOT NULL CHECK (event IN ('exhausted', 'reopened')),
    spent      bigint NOT NULL,
    budget     bigint NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX offer_budget_log_experiment ON offer_budget_log (experiment, id);

-- How far the spend consumer has read the events outbox (events.seq).
CREATE TABLE offer_spend_cursor (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL DEFAULT 0
);
INSERT INTO offer_spend_cursor DEFAULT VALUES;

-- +goose Down
DROP TABLE offer_spend_cursor;
DROP TABLE offer_budget_log;
DROP TABLE offer_shopper_locks;
DROP TABLE offer_spends;
DROP TABLE offer_budgets;
DROP TABLE offer_feed;
DROP TABLE offer_settings_audit;
DROP TABLE offer_settings;
ALTER TABLE experiments DROP COLUMN budget, DROP COLUMN frequency_cap;
