-- Withdrawals and deposits are listed by reference in byte order (as the embedded store does),
-- a page after a cursor: with the column in the "C" collation the primary key serves that
-- range and order instead of every row of the account being read and sorted for each page.
ALTER TABLE withdrawals ALTER COLUMN reference TYPE TEXT COLLATE "C";
ALTER TABLE deposits ALTER COLUMN reference TYPE TEXT COLLATE "C";
