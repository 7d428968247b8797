-- What each run could not store as rows: refused counts the rows the
-- database refused (a constraint or trigger of its schema), kept as rejects
-- with its message; not_stored the rows kept nowhere (a batch given up on
-- after bounded retries, or a refused row whose reject was refused too).
ALTER TABLE vk_runs ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vk_runs ADD COLUMN not_stored INTEGER NOT NULL DEFAULT 0;
