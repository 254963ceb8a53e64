-- A counter that every change to the clients table moves, in the change's own transaction:
-- a server holding clients in memory learns with one indexed read that they changed. Triggers
-- move it, so no writer (not even a statement typed by hand) can change a client unseen.
CREATE TABLE clients_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO clients_version (id, version) VALUES (1, 0);
CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN
    UPDATE clients_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients
BEGIN
    UPDATE clients_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN
    UPDATE clients_version SET version = version + 1 WHERE id = 1;
END;
