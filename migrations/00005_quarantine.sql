-- +goose Up
-- Rows a background consumer (crediting, expiry, the exposure writer, ...) could not write
-- because the database refused them: moved here with the error so that the rest of the
-- stream goes on (internal/database.Quarantine). One row per consumer and key: a row met
-- again is not quarantined twice. Deleting a row releases it: a consumer that skips
-- quarantined keys (the expiry job) then tries it again.
CREATE TABLE quarantine (
    id         bigserial PRIMARY KEY,
    consumer   text NOT NULL,
    key        text NOT NULL,
    -- The row as JSON text, as encoding/json writes it: a NUL is escaped (\u0000) and invalid
    -- UTF-8 replaced, so that any row fits, including the ones refused for those reasons.
    payload    text NOT NULL,
    error      text NOT NULL,
    sqlstate   text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, key)
);

-- +goose Down
DROP TABLE quarantine;
