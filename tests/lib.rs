//! Black-box tests of the HTTP API live in `api/`; this library is empty on purpose.
