-- What each peer holds in this node's storage unopened (limits.peer_stored_bytes) is summed at every batch.
CREATE INDEX messages_unopened ON messages (sender) WHERE folder = 'inbox' AND state = 'received';
