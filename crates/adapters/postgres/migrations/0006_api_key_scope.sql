-- What an API key may do: TRADE (everything, as every key before) or READ. Keys an older
-- build adds during an upgrade get TRADE, as they did.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'TRADE'
    CHECK (scope IN ('TRADE', 'READ'));
