DROP TABLE call_sessions;
