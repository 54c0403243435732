-- A counter that every change to the tables the gate caches in memory
-- (users, groups, memberships, bind accounts) moves, whichever process or
-- code path makes it: the daemon polls this one row to drop its caches
-- when the CLI changes something (issue 15). Triggers, not application
-- code, so that no writer can forget it. Written to run again harmlessly
-- (tests rewind schema_migrations to replay older migrations).
CREATE TABLE IF NOT EXISTS change_counter (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);
INSERT OR IGNORE INTO change_counter (id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS users_insert_counts AFTER INSERT ON users BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS users_update_counts AFTER UPDATE ON users BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS users_delete_counts AFTER DELETE ON users BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS groups_insert_counts AFTER INSERT ON groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS groups_update_counts AFTER UPDATE ON groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS groups_delete_counts AFTER DELETE ON groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS user_groups_insert_counts AFTER INSERT ON user_groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS user_groups_update_counts AFTER UPDATE ON user_groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS user_groups_delete_counts AFTER DELETE ON user_groups BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS bind_accounts_insert_counts AFTER INSERT ON bind_accounts BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS bind_accounts_update_counts AFTER UPDATE ON bind_accounts BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS bind_accounts_delete_counts AFTER DELETE ON bind_accounts BEGIN
	UPDATE change_counter SET n = n + 1 WHERE id = 1;
END;
