//! The MCP server in process, with rmcp's own client over an in-memory duplex pipe, against
//! the emulator serving the demo site and a fresh SQLite store.

mod elicitation;
mod extras;
mod support;
mod templates;
mod tools;
