DROP INDEX call_sessions_newest;
DROP INDEX transfers_by_recipient;
DROP INDEX transfers_by_sender;
DROP INDEX transfers_newest;
