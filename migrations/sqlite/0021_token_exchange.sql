-- Token exchange (RFC 8693): the clients whose tokens a client may exchange, as a JSON list
-- of client ids; empty means tokens issued to any client.
ALTER TABLE clients ADD COLUMN token_exchange_subject_clients TEXT NOT NULL DEFAULT '[]';
