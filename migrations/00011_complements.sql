-- +goose Up
-- The complements model (internal/complements): which products are bought together, learned
-- from the lines of order_completed events. One server of the fleet builds a snapshot on a
-- schedule; every server holds the newest snapshot in memory and hears of a new one by NOTIFY.

-- The settings a build uses: one row, edited by admins (PUT /v1/models/complements/settings), so
-- that every server of the fleet builds and evaluates with the same thresholds.
CREATE TABLE complement_settings (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    window_days    integer NOT NULL DEFAULT 90 CHECK (window_days BETWEEN 1 AND 3650),
    min_orders     integer NOT NULL DEFAULT 3 CHECK (min_orders >= 1),
    min_confidence double precision NOT NULL DEFAULT 0 CHECK (min_confidence >= 0 AND min_confidence <= 1),
    min_lift       double precision NOT NULL DEFAULT 1 CHECK (min_lift >= 0),
    min_llr        double precision NOT NULL DEFAULT 10.83 CHECK (min_llr >= 0),
    max_complements integer NOT NULL DEFAULT 10 CHECK (max_complements BETWEEN 1 AND 50),
    max_basket     integer NOT NULL DEFAULT 50 CHECK (max_basket BETWEEN 2 AND 1000),
    excluded       text[] NOT NULL DEFAULT '{}',
    version        integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO complement_settings DEFAULT VALUES;

-- One row per build. A snapshot is written whole in one transaction, so a reader that sees
-- its row sees all its complements; the newest few are kept, older ones deleted with their rows.
CREATE TABLE complement_snapshots (
    version        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    built_at       timestamptz NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    settings       jsonb NOT NULL,
    -- orders the model learned from; skipped_orders held more than max_basket products and
    -- were left out (their pairs grow with the square of their size and say little).
    orders         bigint NOT NULL,
    skipped_orders bigint NOT NULL,
    -- catalog: products bought in the window; products: those with at least one complement.
    catalog        integer NOT NULL,
    products       integer NOT NULL,
    pairs          bigint NOT NULL,
    build_ms       integer NOT NULL
);

-- A product's complements, best first (rank 1). Measures are of the association between the
-- product (sku) and the complement over the snapshot's orders:
--   orders = orders holding both; support = orders / all orders;
--   confidence = orders / orders holding sku; lift = support / (P(sku) · P(complement));
--   llr = Dunning's log-likelihood ratio G² of the 2×2 table (both, one, the other, neither).
CREATE TABLE complements (
    version           bigint NOT NULL REFERENCES complement_snapshots ON DELETE CASCADE,
    sku               text NOT NULL,
    rank              smallint NOT NULL CHECK (rank >= 1),
    complement        text NOT NULL CHECK (complement <> sku),
    orders            bigint NOT NULL,
    sku_orders        bigint NOT NULL,
    complement_orders bigint NOT NULL,
    support           double precision NOT NULL,
    confidence        double precision NOT NULL,
    lift              double precision NOT NULL,
    llr               double precision NOT NULL,
    PRIMARY KEY (version, sku, rank)
);

-- x·ln(x), 0 at 0: the term of the entropies the log-likelihood ratio is made of. An SQL
-- function of one expression, so the planner inlines it.
CREATE FUNCTION complements_xlogx(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT CASE WHEN x > 0 THEN x * ln(x) ELSE 0 END';

-- Dunning's G² = 2 Σ k·ln(k·n / (row·column)) of the 2×2 table [[k11, k12], [k21, k22]],
-- written as 2·(Σ xlogx(cells) − Σ xlogx(rows) − Σ xlogx(columns) + xlogx(n)). Rounding can
-- make an independent table's G² a hair below 0; it is 0 then.
CREATE FUNCTION complements_llr(k11 double precision, k12 double precision, k21 double precision, k22 double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT greatest(0, 2 * (
        complements_xlogx(k11) + complements_xlogx(k12) + complements_xlogx(k21) + complements_xlogx(k22)
        - complements_xlogx(k11 + k12) - complements_xlogx(k21 + k22)
        - complements_xlogx(k11 + k21) - complements_xlogx(k12 + k22)
        + complements_xlogx(k11 + k12 + k21 + k22)))';

-- +goose Down
DROP FUNCTION complements_llr(double precision, double precision, double precision, double precision);
DROP FUNCTION complements_xlogx(double precision);
DROP TABLE complements;
DROP TABLE complement_snapshots;
DROP TABLE complement_settings;
