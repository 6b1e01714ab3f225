//! The application service driven directly against an in-process emulator and a temporary SQLite store.
