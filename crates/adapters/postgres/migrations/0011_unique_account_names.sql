-- One account per name: names are how the configuration finds its accounts at start (and
-- `fees` is the fee account's). Checked before each insert, that rule still let two callers at
-- once (two ingestion instances starting together, two admin requests) both insert; the index
-- makes the second insert fail, and serves the look-up by name. An account whose name an older
-- account already had keeps its id and is renamed "name (id)".
-- An instance of the older build inserting meanwhile would add a duplicate after the renames.
LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE;
UPDATE accounts SET name = name || ' (' || account_id || ')'
WHERE account_id NOT IN (SELECT MIN(account_id) FROM accounts GROUP BY name)
  AND NOT EXISTS (
      SELECT 1 FROM accounts other
      WHERE other.name = accounts.name || ' (' || accounts.account_id || ')');
-- One whose new name another account has already: its id twice.
UPDATE accounts SET name = name || ' (' || account_id || ') (' || account_id || ')'
WHERE account_id NOT IN (SELECT MIN(account_id) FROM accounts GROUP BY name);
CREATE UNIQUE INDEX accounts_by_name ON accounts (name);
