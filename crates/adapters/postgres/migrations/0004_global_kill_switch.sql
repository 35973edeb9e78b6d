-- The change of the global kill switch (the row of account 0): a copy of an older switch,
-- read late from another partition or by another replica, must not overwrite a newer one.
-- Accounts' rows keep 0.
ALTER TABLE kill_switches ADD COLUMN change BIGINT NOT NULL DEFAULT 0;
