-- A counter that every change to the clients table moves, in the change's own transaction:
-- a server holding clients in memory learns with one indexed read that they changed. Triggers
-- move it, so no writer (not even a statement typed by hand) can change a client unseen, and
-- send a NOTIFY on this schema's clients channel (delivered when the transaction commits).
-- One per statement: the counter row is locked after the statement's own rows, and a
-- statement changing many clients sends one notification.
CREATE TABLE clients_version (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO clients_version (id, version) VALUES (1, 0);
CREATE FUNCTION idp_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'UPDATE %I.clients_version SET version = version + 1 WHERE id = 1', TG_TABLE_SCHEMA
    );
    PERFORM pg_notify('idp_clients_' || left(md5(TG_TABLE_SCHEMA), 16), '');
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION idp_clients_changed();
